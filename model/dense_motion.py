"""The dense motion network: from source and driving keypoints to a dense backward flow
(driving -> source) and an occlusion map, at the downsampled resolution (64x64 for 256)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from model.config import MCNetConfig
from model.keypoints import Keypoints
from model.layers import AntiAliasInterpolation2d, Hourglass, coordinate_grid, keypoint_gaussians


class DenseMotion(NamedTuple):
    """deformation: `B x h x w x 2` sampling grid into the source; occlusion: `B x 1 x h x w`."""

    deformation: torch.Tensor
    occlusion_map: torch.Tensor


def sparse_motions(
    height: int, width: int, kp_source: Keypoints, kp_driving: Keypoints
) -> torch.Tensor:
    """Per-keypoint affine backward flows plus the identity (background).

    Returns `B x (K+1) x h x w x 2`: for keypoint k, z -> kp_s + J_s J_d^-1 (z - kp_d).
    The 2x2 inverse runs in fp32 (there is no half-precision kernel for it).
    """
    value_s, value_d = kp_source.value, kp_driving.value
    b, k, _ = value_d.shape
    identity = coordinate_grid(height, width, value_d).view(1, 1, height, width, 2)
    grid = identity - value_d.view(b, k, 1, 1, 2)
    if kp_driving.jacobian is not None and kp_source.jacobian is not None:
        with torch.autocast(device_type=value_d.device.type, enabled=False):
            jac = torch.matmul(
                kp_source.jacobian.float(), torch.linalg.inv(kp_driving.jacobian.float())
            ).to(grid.dtype)
        grid = torch.matmul(jac.view(b, k, 1, 1, 2, 2), grid.unsqueeze(-1)).squeeze(-1)
    to_source = grid + value_s.view(b, k, 1, 1, 2)
    return torch.cat([identity.expand(b, 1, height, width, 2), to_source], dim=1)


class DenseMotionNetwork(nn.Module):
    """Predicts a mask over the K+1 sparse motions and an occlusion map."""

    def __init__(self, config: MCNetConfig):
        super().__init__()
        cfg = config.generator.dense_motion
        self.num_kp = config.num_kp
        self.kp_variance = cfg.kp_variance
        in_features = (config.num_kp + 1) * (config.num_channels + 1)
        self.hourglass = Hourglass(
            cfg.block_expansion, in_features, cfg.num_blocks, cfg.max_features
        )
        width = self.hourglass.out_filters
        self.mask = nn.Conv2d(width, config.num_kp + 1, kernel_size=7, padding=3)
        self.occlusion = nn.Conv2d(width, 1, kernel_size=7, padding=3)
        self.down: AntiAliasInterpolation2d | None = None
        if cfg.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(config.num_channels, cfg.scale_factor)

    def downsample(self, source_image: torch.Tensor) -> torch.Tensor:
        """The source at the motion resolution: `B x 3 x H x W -> B x 3 x h x w` (cacheable)."""
        return source_image if self.down is None else self.down(source_image)

    def forward(
        self, small_source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints
    ) -> DenseMotion:
        """small_source: `B x 3 x h x w` (from `downsample`, batch 1 or B)."""
        b = kp_driving.value.shape[0]
        _, c, h, w = small_source.shape
        k1 = self.num_kp + 1
        heat = keypoint_gaussians(kp_driving.value, h, w, self.kp_variance) - keypoint_gaussians(
            kp_source.value, h, w, self.kp_variance
        )
        heat = torch.cat([heat.new_zeros(b, 1, h, w), heat], dim=1).unsqueeze(
            2
        )  # B x K+1 x 1 x h x w
        motions = sparse_motions(h, w, kp_source, kp_driving)  # B x K+1 x h x w x 2
        source = small_source.expand(b, c, h, w).unsqueeze(1).expand(b, k1, c, h, w)
        warped = F.grid_sample(  # in fp32, as `model.generator.warp`
            source.reshape(b * k1, c, h, w).float(),
            motions.reshape(b * k1, h, w, 2).float(),
            align_corners=False,
        ).view(b, k1, c, h, w)
        features = self.hourglass(
            torch.cat([heat.to(warped.dtype), warped], dim=2).view(b, -1, h, w)
        )
        mask = F.softmax(self.mask(features), dim=1).unsqueeze(2)  # B x K+1 x 1 x h x w
        deformation = (motions.permute(0, 1, 4, 2, 3) * mask).sum(dim=1).permute(0, 2, 3, 1)
        occlusion = torch.sigmoid(self.occlusion(features))
        return DenseMotion(deformation, occlusion)
