"""The two networks of a checkpoint, held together."""

from __future__ import annotations

from torch import nn

from model.config import MCNetConfig
from model.generator import Generator
from model.keypoint_detector import KPDetector


class MCNet(nn.Module):
    """`generator` and `kp_detector`, named as the published checkpoint's two entries.

    The state dict of this module is `generator.<key>` and `kp_detector.<key>`, the layout
    of our safetensors files.
    """

    def __init__(self, config: MCNetConfig | None = None):
        super().__init__()
        self.config = config or MCNetConfig()
        self.generator = Generator(self.config)
        self.kp_detector = KPDetector(self.config)
        self.eval()
        self.requires_grad_(False)
