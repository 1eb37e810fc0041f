"""The meta-memory bank and its implicit-identity-conditioned compensation (MCNet Sec. 3),
written as the official `ExpendMemoryUnit` computes it.

A learned memory `1 x Cm x S x S` is modulated per frame by a style code computed from the
projected warped features and the source keypoints (StyleGAN2 modulated conv + noise). A
dynamic convolution, whose kernel mixture is chosen by the features, turns the modulated
memory into keys and values; the features' projection queries them, and the attended memory
compensates the warped features. One module serves the three decoder scales; its per-scale
layers are named after the feature width (`feat_forward_proj_32`, `conv_64`, ...).

This is the reference: per-sample weights, grouped convolutions, maps `B x C x h x w` and an
explicit attention matrix, as published. The serving path runs `model.fused_memory`, which
computes the same numbers with fewer operations and is tested against this module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model.config import MCNetConfig


class EqualLinear(nn.Module):
    """Linear layer with the weight scaled by 1/sqrt(fan_in) at run time (StyleGAN2)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.full((out_features,), bias_init))
        self.scale = 1 / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated 3x3 conv: a per-sample weight, its input channels scaled by the
    style, demodulated (each output filter normalised to unit norm); no bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_features: int):
        super().__init__()
        self.out_channels = out_channels
        self.modulation = EqualLinear(style_features, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.eps = 1e-8

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """x: `B x Cin x H x W`; style: `B x style_features` -> `B x Cout x H x W`."""
        b, c, h, w = x.shape
        s = self.modulation(style).view(b, 1, c, 1, 1)
        weight = self.scale * self.weight * s  # B x Cout x Cin x k x k
        demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)  # B x Cout
        weight = weight * demod.view(b, self.out_channels, 1, 1, 1)
        weight = weight.view(b * self.out_channels, c, *weight.shape[3:])
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=self.padding, groups=b)
        return out.view(b, self.out_channels, *out.shape[2:])


class FusedLeakyReLU(nn.Module):
    """sqrt(2) * leaky_relu(x + bias, 0.2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return math.sqrt(2) * F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2)


class StyleConv(nn.Module):
    """Modulated conv + Gaussian noise scaled by a learned scalar (`weight`) + activation."""

    def __init__(self, channels: int, style_features: int):
        super().__init__()
        self.modulated_conv = ModulatedConv2d(channels, channels, 3, style_features)
        self.weight = nn.Parameter(torch.zeros(1))
        self.activate = FusedLeakyReLU(channels)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """noise: `B x 1 x H x W`; None draws it from torch's global generator, as published."""
        out = self.modulated_conv(x, style)
        if noise is None:
            b, _, h, w = out.shape
            noise = out.new_empty(b, 1, h, w).normal_()
        out = out + self.weight * noise.to(out.dtype)
        return self.activate(out)


class KernelAttention(nn.Module):
    """The dynamic conv's `attention2d`: softmax weights over its K kernels from the spatial
    mean of the features, `B x C x h x w -> B x K`."""

    def __init__(self, channels: int, ratio: float, kernels: int, temperature: float):
        super().__init__()
        hidden = int(channels * ratio) + 1
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, kernels, 1, bias=True)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, 1)  # B x C x 1 x 1
        logits = self.fc2(F.relu(self.fc1(pooled))).view(x.shape[0], -1)
        return F.softmax(logits / self.temperature, dim=1)


class DynamicConv2d(nn.Module):
    """`Dynamic_conv2d`: a 3x3 conv of `y` with a per-sample mixture of K kernels (and
    biases), the mixture chosen from `x`. Run as one grouped conv over the batch."""

    def __init__(
        self, in_channels: int, out_channels: int, kernels: int, ratio: float, temperature: float
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernels = in_channels, out_channels, kernels
        self.attention = KernelAttention(in_channels, ratio, kernels, temperature)
        self.weight = nn.Parameter(torch.randn(kernels, out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(kernels, out_channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x: `B x Cin x h x w` chooses the kernels; y: `B x Cin x H x W` -> `B x Cout x H x W`."""
        mix = self.attention(x)  # B x K
        b, _, h, w = y.shape
        weight = torch.mm(mix, self.weight.view(self.kernels, -1))
        weight = weight.view(-1, self.in_channels, 3, 3)  # B*Cout x Cin x 3 x 3
        bias = torch.mm(mix, self.bias).view(-1)  # B*Cout
        out = F.conv2d(y.reshape(1, -1, h, w), weight, bias, padding=1, groups=b)
        return out.view(b, self.out_channels, h, w)


class MemoryUnit(nn.Module):
    """ExpendMemoryUnit: compensates half of a feature map's channels with the memory.

    Input `B x C x h x w` (h = w in {S, 2S, 4S} for a 256 image: 32, 64, 128); the even
    channels pass through, the odd ones are compensated, and the two are interleaved back.
    """

    def __init__(self, config: MCNetConfig):
        super().__init__()
        gen, mem = config.generator, config.generator.memory
        cm = mem.channels
        self.attention_divisor = mem.attention_divisor
        self.mb = nn.Parameter(torch.empty(1, cm, mem.spatial, mem.spatial))
        nn.init.kaiming_uniform_(self.mb, mode="fan_in", nonlinearity="relu")
        levels = range(gen.num_down_blocks - 1, -1, -1)
        # The widths of the feature maps it compensates, coarsest first (32, 64, 128).
        self.widths = [config.image_size // 2 ** (level + 1) for level in levels]
        for level, size in zip(levels, self.widths, strict=True):
            half = min(gen.max_features, gen.block_expansion * 2 ** (level + 1)) // 2
            self.add_module(f"feat_forward_proj_{size}", nn.Conv2d(half, cm, kernel_size=1))
            self.add_module(f"conv_{size}", nn.Conv2d(cm, half, kernel_size=3, padding=1))
            self.add_module(f"norm_{size}", nn.InstanceNorm2d(half, affine=True))
        self.query_conv = nn.Conv2d(cm, cm, kernel_size=1)
        self.conv_kv = DynamicConv2d(
            cm, 2 * cm, mem.dynamic_kernels, mem.dynamic_ratio, mem.dynamic_temperature
        )
        self.diff_conv = nn.Conv2d(cm, cm, kernel_size=1)
        self.style_route = nn.Sequential(
            nn.Linear(cm + 2 * config.num_kp, mem.style_hidden),
            nn.ReLU(True),
            nn.Linear(mem.style_hidden, mem.style_features),
        )
        self.styleconv = StyleConv(cm, mem.style_features)

    def scale_layers(self, width: int) -> tuple[nn.Conv2d, nn.Conv2d, nn.InstanceNorm2d]:
        """The projection, output conv and norm of the scale whose maps are `width` wide."""
        return (
            getattr(self, f"feat_forward_proj_{width}"),
            getattr(self, f"conv_{width}"),
            getattr(self, f"norm_{width}"),
        )

    def forward(
        self, feature: torch.Tensor, kp_source_value: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """feature: `B x C x h x w`; kp_source_value: `B x K x 2`; noise: `B x 1 x S x S`
        (None: drawn from torch's global generator). Returns `B x C x h x w`."""
        passed, compensated = feature[:, 0::2], feature[:, 1::2]
        b, c, h, w = compensated.shape
        proj, conv, norm = self.scale_layers(w)
        feat = proj(compensated)  # B x Cm x h x w
        pooled = F.adaptive_avg_pool2d(feat, 1).view(b, -1)  # B x Cm
        code = torch.cat([pooled, kp_source_value.reshape(b, -1)], 1)
        style = self.style_route(code)  # B x style_features
        memory = self.styleconv(self.mb.expand(b, -1, -1, -1), style, noise)  # B x Cm x S x S
        key, value = F.relu(self.conv_kv(feat, memory)).chunk(2, dim=1)  # B x Cm x S x S
        query = F.relu(self.query_conv(feat))  # B x Cm x h x w
        q = query.flatten(2).transpose(1, 2)  # B x hw x Cm
        k, v = key.flatten(2).transpose(1, 2), value.flatten(2).transpose(1, 2)  # B x SS x Cm
        attention = torch.softmax(q @ k.transpose(1, 2) / self.attention_divisor, dim=-1)
        residual = (attention @ v).transpose(1, 2).reshape(b, -1, h, w)  # B x Cm x h x w
        out = F.relu(self.diff_conv(feat - residual)) + feat
        out = F.relu(norm(conv(out)))
        return torch.stack((passed, out), dim=2).view(b, 2 * c, h, w)
