"""The memory unit's serving copy: `model.memory_bank.MemoryUnit`'s numbers, fewer operations.

Built once from a loaded reference unit (`FusedMemoryUnit(unit)`); every rewrite below is
exact algebra, so results differ from the reference only by float rounding:

- tokens: the compensated features are kept as `B x h*w x C` rows, where a 1x1 conv is one
  matrix product and attention gets the layout of the fused kernel;
- composed 1x1 convs: `query_conv(proj(x))` and `diff_conv(proj(x))` are 1x1 convs of a 1x1
  conv, computed once per scale as one `Cm x c` map (c < Cm input channels) instead of two;
- `diff_conv` moved onto the values: `diff_conv(feat - A v) = diff_conv(feat) - A (v Wd^T)`,
  applied to the S x S memory tokens instead of the h x w feature tokens;
- fused attention: `softmax(q k^T / 4) v` as one `scaled_dot_product_attention` call, which
  never builds the `h*w x S*S` matrix;
- one shared modulated weight: StyleGAN2's per-sample weight `W * s` demodulated by `d`
  equals `conv(x * s, W) * d` with `d = rsqrt(s^2 @ sum(W^2) + eps)`, so the batch shares one
  conv instead of a grouped conv of B weights (the memory itself is a batch of one);
- the dynamic conv as one batched product of the per-sample kernel mixtures with the unfolded
  memory, giving keys and values directly as tokens.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from model.memory_bank import DynamicConv2d, MemoryUnit, ModulatedConv2d, StyleConv


def compose_1x1(outer: nn.Conv2d, inner: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight `Cout x Cin` and bias of the 1x1 conv `outer(inner(x))`, computed in float64."""
    w_out, w_in = outer.weight.double().flatten(1), inner.weight.double().flatten(1)
    bias_in = _bias(inner).double()
    weight = w_out @ w_in
    bias = w_out @ bias_in + _bias(outer).double()
    return weight.to(inner.weight.dtype), bias.to(inner.weight.dtype)


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    return conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)


def _frozen(tensor: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(tensor.detach().clone(), requires_grad=False)


class SharedWeightModulatedConv(nn.Module):
    """`ModulatedConv2d` as conv(x * s, W) * d, one weight for the whole batch:
    x `1 or B x Cin x H x W`, style `B x style_features` -> `B x Cout x H x W`."""

    def __init__(self, conv: ModulatedConv2d):
        super().__init__()
        self.modulation = conv.modulation
        weight = conv.weight[0] * conv.scale  # Cout x Cin x k x k
        self.weight = _frozen(weight)
        self.weight_energy = _frozen(weight.pow(2).sum((2, 3)).t())  # Cin x Cout
        self.padding, self.eps = conv.padding, conv.eps

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.modulation(style)  # B x Cin
        demod = torch.rsqrt(s.pow(2) @ self.weight_energy.to(s.dtype) + self.eps)  # B x Cout
        out = F.conv2d(x * s[:, :, None, None], self.weight, padding=self.padding)
        return out * demod[:, :, None, None]


class SharedWeightStyleConv(nn.Module):
    """`StyleConv` with its modulated conv as `SharedWeightModulatedConv`; the noise weight
    and the activation are the reference's."""

    def __init__(self, conv: StyleConv):
        super().__init__()
        self.modulated_conv = SharedWeightModulatedConv(conv.modulated_conv)
        self.weight, self.activate = conv.weight, conv.activate

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        out = self.modulated_conv(x, style)
        if noise is None:
            b, _, h, w = out.shape
            noise = out.new_empty(b, 1, h, w).normal_()
        return self.activate(out + self.weight * noise.to(out.dtype))


class TokenDynamicConv(nn.Module):
    """`DynamicConv2d` from the features' spatial mean, its output as tokens:
    pooled `B x Cin`, y `1 or B x Cin x H x W` -> `B x H*W x Cout`."""

    def __init__(self, conv: DynamicConv2d):
        super().__init__()
        self.out_channels = conv.out_channels
        attention = conv.attention
        self.fc1 = _frozen(attention.fc1.weight.flatten(1))
        self.fc2 = _frozen(attention.fc2.weight.flatten(1))
        self.fc2_bias = _frozen(_bias(attention.fc2))
        self.temperature = attention.temperature
        self.weight = _frozen(conv.weight.flatten(1))  # K x Cout*Cin*9
        self.bias = _frozen(conv.bias)  # K x Cout

    def forward(self, pooled: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(F.linear(pooled, self.fc1))
        mix = F.softmax(F.linear(hidden, self.fc2, self.fc2_bias) / self.temperature, dim=1)
        b = pooled.shape[0]
        weight = (mix @ self.weight).view(b, self.out_channels, -1)  # B x Cout x Cin*9
        bias = mix @ self.bias  # B x Cout
        columns = F.unfold(y, kernel_size=3, padding=1)  # 1 or B x Cin*9 x H*W
        columns = columns.expand(b, -1, -1).to(weight.dtype)
        return torch.baddbmm(bias.unsqueeze(1), columns.transpose(1, 2), weight.transpose(1, 2))


class ScaleLayers(nn.Module):
    """One decoder scale's layers: the projection alone and composed with `query_conv` and
    `diff_conv` (`Cm x c` maps), and the output conv and norm of the reference."""

    def __init__(self, unit: MemoryUnit, width: int):
        super().__init__()
        proj, self.conv, self.norm = unit.scale_layers(width)
        self.proj_weight = _frozen(proj.weight.flatten(1))
        self.proj_bias = _frozen(_bias(proj))
        query = compose_1x1(unit.query_conv, proj)
        self.query_weight, self.query_bias = _frozen(query[0]), _frozen(query[1])
        diff = compose_1x1(unit.diff_conv, proj)
        self.diff_weight, self.diff_bias = _frozen(diff[0]), _frozen(diff[1])


class FusedMemoryUnit(nn.Module):
    """`MemoryUnit` computed with the rewrites above; same inputs and outputs."""

    def __init__(self, unit: MemoryUnit):
        super().__init__()
        self.mb = unit.mb
        self.attention_divisor = unit.attention_divisor
        self.scales = nn.ModuleDict({str(w): ScaleLayers(unit, w) for w in unit.widths})
        self.style_route = unit.style_route
        self.styleconv = SharedWeightStyleConv(unit.styleconv)
        self.conv_kv = TokenDynamicConv(unit.conv_kv)
        self.value_diff_weight = _frozen(unit.diff_conv.weight.flatten(1))  # no bias

    def forward(
        self, feature: torch.Tensor, kp_source_value: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """feature: `B x C x h x w`; kp_source_value: `B x K x 2`; noise: `B x 1 x S x S`."""
        passed, compensated = feature[:, 0::2], feature[:, 1::2]
        b, c, h, w = compensated.shape
        scale = cast(ScaleLayers, self.scales[str(w)])
        tokens = compensated.permute(0, 2, 3, 1).reshape(b, h * w, c)  # B x hw x c
        feat = F.linear(tokens, scale.proj_weight, scale.proj_bias)  # B x hw x Cm
        pooled = feat.mean(dim=1)  # B x Cm
        code = torch.cat([pooled, kp_source_value.reshape(b, -1).to(pooled.dtype)], 1)
        style = self.style_route(code)  # B x style_features
        memory = self.styleconv(self.mb, style, noise)  # B x Cm x S x S
        key, value = F.relu(self.conv_kv(pooled, memory)).chunk(2, dim=2)  # B x SS x Cm
        query = F.relu(F.linear(tokens, scale.query_weight, scale.query_bias))
        value_diff = F.linear(value, self.value_diff_weight)
        residual_diff = F.scaled_dot_product_attention(
            query.unsqueeze(1),  # B x 1 x hw x Cm
            key.unsqueeze(1),  # B x 1 x SS x Cm
            value_diff.unsqueeze(1),
            scale=1 / self.attention_divisor,
        ).squeeze(1)
        diff = F.linear(tokens, scale.diff_weight, scale.diff_bias) - residual_diff
        out = (feat + F.relu(diff)).view(b, h, w, -1).permute(0, 3, 1, 2)  # B x Cm x h x w
        out = F.relu(scale.norm(scale.conv(out)))
        return torch.stack((passed, out), dim=2).reshape(b, 2 * c, h, w)
