"""The meta-memory bank and its implicit-identity-conditioned compensation (MCNet Sec. 3).

A learned memory `1 x Cm x S x S` is modulated per frame by a style code computed from the
warped source features and the source keypoints (StyleGAN2 modulated conv + noise). A
dynamic convolution, whose kernel mixture is chosen by the features, turns the modulated
memory into keys and values; the features' projection queries them, and the attended memory
compensates the warped features. One module serves the three decoder scales; its per-scale
layers are named after the feature width (`feat_forward_proj_32`, `conv_64`, ...).
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
    """3x3 conv whose input channels are scaled per sample by a style, then demodulated.

    Computed as conv(x * s, W) * d with d = rsqrt(sum (W s)^2 + eps): the same numbers as
    a per-sample weight, with one shared weight for the whole batch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_features: int):
        super().__init__()
        self.modulation = EqualLinear(style_features, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.eps = 1e-8

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """x: `B x Cin x H x W` (or `1 x ...`, shared); style: `B x style_features`."""
        s = self.modulation(style)  # B x Cin
        weight = self.weight[0] * self.scale  # Cout x Cin x k x k
        demod = torch.rsqrt(s.pow(2) @ weight.pow(2).sum((2, 3)).t() + self.eps)  # B x Cout
        out = F.conv2d(x * s[:, :, None, None], weight, padding=self.padding)
        return out * demod[:, :, None, None]


class FusedLeakyReLU(nn.Module):
    """sqrt(2) * leaky_relu(x + bias, 0.2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


class StyleConv(nn.Module):
    """Modulated conv + Gaussian noise scaled by a learned scalar (`weight`) + activation."""

    def __init__(self, channels: int, style_features: int):
        super().__init__()
        self.modulated_conv = ModulatedConv2d(channels, channels, 3, style_features)
        self.weight = nn.Parameter(torch.zeros(1))
        self.activate = FusedLeakyReLU(channels)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """noise: `B x 1 x H x W`; None draws it from torch's global generator, as published."""
        out = self.modulated_conv(x, style)
        if noise is None:
            b, _, h, w = out.shape
            noise = out.new_empty(b, 1, h, w).normal_()
        return self.activate(out + self.weight * noise.to(out.dtype))


class KernelAttention(nn.Module):
    """Softmax weights over the dynamic conv's K kernels from pooled features: `B x K`."""

    def __init__(self, channels: int, ratio: float, kernels: int, temperature: float):
        super().__init__()
        hidden = int(channels * ratio) + 1
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, kernels, 1, bias=True)
        self.temperature = temperature

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled: `B x C`, the features' spatial mean."""
        hidden = F.relu(F.linear(pooled, self.fc1.weight.flatten(1)))
        logits = F.linear(hidden, self.fc2.weight.flatten(1), self.fc2.bias)
        return F.softmax(logits / self.temperature, dim=1)


class DynamicConv2d(nn.Module):
    """3x3 conv of `y` with a per-sample mixture of K kernels chosen from pooled features.

    The per-sample kernels are applied as one batched matrix product over the unfolded input,
    which gives the result as tokens (`B x H*W x Cout`), the layout attention takes.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernels: int, ratio: float, temperature: float
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.attention = KernelAttention(in_channels, ratio, kernels, temperature)
        self.weight = nn.Parameter(torch.randn(kernels, out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(kernels, out_channels))

    def forward(self, pooled: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """pooled: `B x Cin` chooses the kernels; y: `B x Cin x H x W` -> `B x H*W x Cout`."""
        mix = self.attention(pooled)  # B x K
        b = y.shape[0]
        weight = (mix @ self.weight.flatten(1)).view(b, self.out_channels, -1)  # B x Cout x Cin*9
        bias = mix @ self.bias  # B x Cout
        columns = F.unfold(y, kernel_size=3, padding=1)  # B x Cin*9 x H*W
        return torch.baddbmm(bias.unsqueeze(1), columns.transpose(1, 2), weight.transpose(1, 2))


def _compose_1x1(outer: nn.Conv2d, inner: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight `Cout x Cin` and bias of the 1x1 conv `outer(inner(x))` as a linear map of the
    channels, computed in fp32."""
    with torch.autocast(device_type=outer.weight.device.type, enabled=False):
        w_out, w_in = outer.weight.float().flatten(1), inner.weight.float().flatten(1)
        weight = w_out @ w_in
        bias = w_out @ _bias(inner).float() + _bias(outer).float()
    return weight, bias


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    return conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)


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
        for level in range(gen.num_down_blocks - 1, -1, -1):
            size = config.image_size // 2 ** (level + 1)
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

    def forward(
        self, feature: torch.Tensor, kp_source_value: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """feature: `B x C x h x w`; kp_source_value: `B x K x 2`; noise: `B x 1 x S x S`.

        The published unit works on `B x Cm x h x w` maps; this one keeps them as tokens
        (`B x h*w x Cm`), where the 1x1 convs are matrix products and attention gets the
        layout of its fused kernel. The numbers are the same.
        """
        passed, compensated = feature[:, 0::2], feature[:, 1::2]
        b, c, h, w = compensated.shape
        tokens = compensated.permute(0, 2, 3, 1).reshape(b, h * w, c)  # B x hw x c
        proj: nn.Conv2d = getattr(self, f"feat_forward_proj_{w}")
        feat = F.linear(tokens, proj.weight.flatten(1), proj.bias)  # B x hw x Cm
        pooled = feat.mean(dim=1)  # B x Cm
        code = torch.cat([pooled, kp_source_value.reshape(b, -1).to(feat.dtype)], 1)
        style = self.style_route(code)  # B x style_features
        memory = self.styleconv(self.mb, style, noise)  # B x Cm x S x S
        key, value = F.relu(self.conv_kv(pooled, memory)).chunk(2, dim=2)  # B x SS x Cm
        # query_conv(feat) and diff_conv(feat - residual) are 1x1 convs of a 1x1 conv: run
        # them as one product with the c < Cm input channels, and move diff_conv's weight
        # onto the values (S x S tokens instead of h x w): diff_conv(residual) = A (v W_d^T).
        query = F.relu(F.linear(tokens, *_compose_1x1(self.query_conv, proj)))
        value_diff = F.linear(value, self.diff_conv.weight.flatten(1))  # no bias
        residual_diff = F.scaled_dot_product_attention(
            query.unsqueeze(1),  # B x 1 x hw x Cm
            key.unsqueeze(1),  # B x 1 x SS x Cm
            value_diff.unsqueeze(1),
            scale=1 / self.attention_divisor,
        ).squeeze(1)
        diff = F.linear(tokens, *_compose_1x1(self.diff_conv, proj)) - residual_diff
        out = (feat + F.relu(diff)).view(b, h, w, -1).permute(0, 3, 1, 2)  # B x Cm x h x w
        out = F.relu(getattr(self, f"norm_{w}")(getattr(self, f"conv_{w}")(out)))
        return torch.stack((passed, out), dim=2).reshape(b, 2 * c, h, w)
