"""An inference copy of the networks with fewer operations and the same numbers.

The published blocks are kept as they are for loading checkpoints and for the reference path;
the animator runs a copy in which, computed once from the loaded weights:

- conv -> batch norm (eval) -> ReLU blocks become one conv with the norm folded into its
  weight and bias (`SameBlock2d`, `DownBlock2d`, and the second norm of `ResBlock2d`);
- nearest 2x upsampling -> 3x3 conv (`UpBlock2d`) becomes a 2x2 conv of the low-resolution
  input with four output phases, interleaved: each output pixel of a 3x3 conv over a nearest
  upsampled image sees only a 2x2 neighbourhood of the input, so summing the 3x3 kernel's
  taps that fall on the same input pixel gives 16 instead of 36 multiply-adds per input pixel,
  and the upsampled image is never built;
- the memory unit becomes `model.fused_memory.FusedMemoryUnit` (tokens, composed 1x1 convs,
  fused attention, one shared modulated weight; see that module).

Results differ from the reference blocks only by float rounding (about 1e-6 relative).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from model.fused_memory import FusedMemoryUnit
from model.layers import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from model.memory_bank import MemoryUnit
from model.networks import MCNet


def fold_batch_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of `norm(conv(x))` as one conv, for a norm in eval mode (running stats)."""
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("only a batch norm with running statistics can be folded")
    scale = torch.rsqrt(norm.running_var.double() + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.double()
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    bias = (bias - norm.running_mean.double()) * scale
    if norm.bias is not None:
        bias = bias + norm.bias.double()
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
    return weight.to(conv.weight.dtype), bias.to(conv.weight.dtype)


def subpixel_kernels(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 kernel `Cout x Cin x 3 x 3` applied after nearest 2x upsampling, as four 2x2
    kernels on the input: `4 * Cout x Cin x 2 x 2`, phase (a, b) = 2a + b first.

    Output row 2i + a of the upsampled conv reads upsampled rows 2i + a - 1 .. 2i + a + 1,
    which are input rows (i - 1, i, i) for a = 0 and (i, i, i + 1) for a = 1: the taps on the
    same input row add up. Columns likewise.
    """

    def merge(kernel: torch.Tensor, dim: int, phase: int) -> torch.Tensor:
        first, middle, last = kernel.unbind(dim)
        pair = (first, middle + last) if phase == 0 else (first + middle, last)
        return torch.stack(pair, dim)

    phases = [merge(merge(weight, 2, a), 3, b) for a in (0, 1) for b in (0, 1)]
    return torch.cat(phases, dim=0)


class FoldedConvBlock(nn.Module):
    """conv with its batch norm folded in -> ReLU (-> 2x2 average pool for a down block)."""

    def __init__(self, block: SameBlock2d | DownBlock2d):
        super().__init__()
        weight, bias = fold_batch_norm(block.conv, block.norm)
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.padding = block.conv.padding
        self.pool = isinstance(block, DownBlock2d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(F.conv2d(x, self.weight, self.bias, padding=self.padding))
        return F.avg_pool2d(out, kernel_size=2) if self.pool else out


class SubPixelUpBlock(nn.Module):
    """`UpBlock2d` as a 2x2 conv of the input into four phases: `B x Cin x H x W ->
    B x Cout x 2H x 2W`, with the block's batch norm folded in."""

    def __init__(self, block: UpBlock2d):
        super().__init__()
        conv = block.conv
        if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.stride != (1, 1):
            raise ValueError("a sub-pixel up block needs the 3x3 conv of padding 1, stride 1")
        weight, bias = fold_batch_norm(conv, block.norm)
        self.out_channels = weight.shape[0]
        self.weight = nn.Parameter(subpixel_kernels(weight), requires_grad=False)
        self.bias = nn.Parameter(bias.repeat(4), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        # Phase (a, b) at input pixel (i, j) is the 2x2 window at (i + a, j + b) of the padded
        # input: one conv gives all four phases on an (h + 1) x (w + 1) grid.
        phases = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias))
        phases = phases.view(b, 4, self.out_channels, h + 1, w + 1)
        memory_format = (
            torch.channels_last
            if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
            else torch.contiguous_format
        )
        out = torch.empty(
            b,
            self.out_channels,
            2 * h,
            2 * w,
            dtype=phases.dtype,
            device=x.device,
            memory_format=memory_format,
        )
        grid = out.view(b, self.out_channels, h, 2, w, 2)
        for a in (0, 1):
            for c in (0, 1):
                grid[:, :, :, a, :, c] = phases[:, 2 * a + c, :, a : a + h, c : c + w]
        return out


class FoldedResBlock(nn.Module):
    """`ResBlock2d` with its second batch norm folded into the first conv."""

    def __init__(self, block: ResBlock2d):
        super().__init__()
        self.norm1 = block.norm1
        weight, bias = fold_batch_norm(block.conv1, block.norm2)
        self.weight1 = nn.Parameter(weight, requires_grad=False)
        self.bias1 = nn.Parameter(bias, requires_grad=False)
        self.padding = block.conv1.padding
        self.conv2 = block.conv2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(x))
        out = F.relu(F.conv2d(out, self.weight1, self.bias1, padding=self.padding))
        return self.conv2(out) + x


def _fused(module: nn.Module) -> nn.Module | None:
    if isinstance(module, SameBlock2d | DownBlock2d):
        return FoldedConvBlock(module)
    if isinstance(module, UpBlock2d):
        return SubPixelUpBlock(module)
    if isinstance(module, ResBlock2d):
        return FoldedResBlock(module)
    if isinstance(module, MemoryUnit):
        return FusedMemoryUnit(module)
    return None


def fuse_for_inference(networks: MCNet) -> MCNet:
    """A copy of `networks` (in eval mode) with the blocks above replaced; `networks` is
    left as it is. The copy's state dict is not the checkpoint's: it is for running only."""
    fused = copy.deepcopy(networks).eval()
    for module in list(fused.modules()):
        for name, child in list(module.named_children()):
            replacement = _fused(child)
            if replacement is not None:
                setattr(module, name, replacement)
    return fused
