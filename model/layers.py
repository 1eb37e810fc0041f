"""Building blocks shared by the keypoint detector, the dense motion network and the generator.

Attribute names (`conv`, `norm`, `encoder.down_blocks`, ...) are those of the published
checkpoint, so its state dict loads with `strict=True`. Images are `B x C x H x W`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """`H x W x 2` grid of (x, y) coordinates spanning [-1, 1] corner to corner."""
    x = torch.arange(width, dtype=like.dtype, device=like.device)
    y = torch.arange(height, dtype=like.dtype, device=like.device)
    x = 2 * (x / (width - 1)) - 1
    y = 2 * (y / (height - 1)) - 1
    return torch.stack(
        [x.view(1, -1).expand(height, width), y.view(-1, 1).expand(height, width)], 2
    )


def keypoint_gaussians(
    value: torch.Tensor, height: int, width: int, variance: float
) -> torch.Tensor:
    """Gaussian blobs around keypoints: `B x K x 2` -> `B x K x H x W`."""
    grid = coordinate_grid(height, width, value)  # H x W x 2
    diff = grid.view(1, 1, height, width, 2) - value.view(*value.shape[:2], 1, 1, 2)
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


class SameBlock2d(nn.Module):
    """conv -> batch norm -> ReLU, resolution kept."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """conv -> batch norm -> ReLU -> 2x2 average pool: `B x Cin x H x W -> B x Cout x H/2 x W/2`."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), kernel_size=2)


class UpBlock2d(nn.Module):
    """nearest 2x upsampling -> conv -> batch norm -> ReLU: `H x W -> 2H x 2W`."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2.0))))


class ResBlock2d(nn.Module):
    """Pre-activation residual block (norm, ReLU, conv, twice), resolution and width kept."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm2d(features, affine=True)
        self.norm2 = nn.BatchNorm2d(features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class Encoder(nn.Module):
    """Hourglass encoder: returns the input and every down block's output."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        widths = [in_features] + [
            min(max_features, block_expansion * (2 ** (i + 1))) for i in range(num_blocks)
        ]
        self.down_blocks = nn.ModuleList(
            DownBlock2d(widths[i], widths[i + 1]) for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: up blocks, each followed by concatenation of the encoder skip."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            width = min(max_features, block_expansion * (2 ** (i + 1)))
            in_filters = width if i == num_blocks - 1 else 2 * width
            blocks.append(UpBlock2d(in_filters, min(max_features, block_expansion * (2**i))))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        out = skips[-1]
        for block, skip in zip(self.up_blocks, reversed(skips[:-1]), strict=True):
            out = torch.cat([block(out), skip], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net: `B x in_features x H x W -> B x (block_expansion + in_features) x H x W`."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def antialias_kernel(channels: int, scale: float) -> torch.Tensor:
    """Gaussian low-pass kernel for downsampling by `scale`: `C x 1 x k x k`, sums to 1."""
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    gauss = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = gauss.view(-1, 1) * gauss.view(1, -1)
    kernel = kernel / kernel.sum()
    return kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1)


class AntiAliasInterpolation2d(nn.Module):
    """Band-limited downsampling: Gaussian blur (a stored depthwise kernel), then striding.

    The kernel is a buffer named `weight`, part of the checkpoint: it is used as loaded.
    """

    weight: torch.Tensor

    def __init__(self, channels: int, scale: float):
        super().__init__()
        kernel = antialias_kernel(channels, scale)
        size = kernel.shape[-1]
        self.pad_before = size // 2
        self.pad_after = self.pad_before - 1 if size % 2 == 0 else self.pad_before
        self.register_buffer("weight", kernel)
        self.channels = channels
        self.stride = int(1 / scale)
        if not math.isclose(1 / scale, self.stride):
            raise ValueError(f"scale_factor must be 1/n, got {scale}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.pad_before, self.pad_after, self.pad_before, self.pad_after)
        out = F.conv2d(F.pad(x, pad), weight=self.weight.to(x.dtype), groups=self.channels)
        return out[:, :, :: self.stride, :: self.stride]
