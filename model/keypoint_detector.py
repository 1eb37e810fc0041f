"""The keypoint detector: an hourglass predicts one heatmap per keypoint; the keypoint is
the heatmap's mean and its jacobian the heatmap-weighted average of predicted 2x2 maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import MCNetConfig
from model.keypoints import Keypoints
from model.layers import AntiAliasInterpolation2d, Hourglass, coordinate_grid


class KPDetector(nn.Module):
    """`B x 3 x H x W` image -> `Keypoints` (`B x K x 2`, `B x K x 2 x 2`)."""

    def __init__(self, config: MCNetConfig):
        super().__init__()
        cfg = config.kp_detector
        self.num_kp = config.num_kp
        self.temperature = cfg.temperature
        self.predictor = Hourglass(
            cfg.block_expansion, config.num_channels, cfg.num_blocks, cfg.max_features
        )
        width = self.predictor.out_filters
        # No padding: a 64x64 feature map gives 58x58 heatmaps, as published.
        self.kp = nn.Conv2d(width, config.num_kp, kernel_size=7, padding=0)
        self.jacobian: nn.Conv2d | None = None
        if cfg.estimate_jacobian:
            # Initialised to the identity: untrained weights give affine-free motion.
            jacobian = nn.Conv2d(width, 4 * config.num_kp, kernel_size=7, padding=0)
            nn.init.zeros_(jacobian.weight)
            jacobian.bias = nn.Parameter(torch.tensor([1.0, 0.0, 0.0, 1.0] * config.num_kp))
            self.jacobian = jacobian
        self.down: AntiAliasInterpolation2d | None = None
        if cfg.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(config.num_channels, cfg.scale_factor)

    def forward(self, image: torch.Tensor) -> Keypoints:
        x = image if self.down is None else self.down(image)
        features = self.predictor(x)
        logits = self.kp(features)  # B x K x h x w
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, -1) / self.temperature, dim=2).view(b, k, h, w)
        grid = coordinate_grid(h, w, heatmap)  # h x w x 2
        value = (heatmap.unsqueeze(-1) * grid.view(1, 1, h, w, 2)).sum(dim=(2, 3))
        if self.jacobian is None:
            return Keypoints(value, None)
        maps = self.jacobian(features).reshape(b, k, 4, h, w)
        jacobian = (heatmap.unsqueeze(2) * maps).view(b, k, 4, -1).sum(dim=-1)
        return Keypoints(value, jacobian.view(b, k, 2, 2))
