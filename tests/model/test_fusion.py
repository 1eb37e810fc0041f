"""The inference copy's fused blocks against the published blocks they replace."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from model.fusion import (
    FoldedConvBlock,
    FoldedResBlock,
    SubPixelUpBlock,
    fuse_for_inference,
    subpixel_kernels,
)
from model.layers import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from model.networks import MCNet
from tests.model.conftest import random_frames


def _trained_like(module: nn.Module, seed: int) -> nn.Module:
    """Random weights and batch-norm statistics (untrained ones are the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 1.5 + 0.25)
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.sub_(m.weight.mean()).mul_(2)
    return module.eval()


def _assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float rounding: 1e-5 of the output's largest magnitude."""
    assert actual.shape == expected.shape
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5 * max(scale, 1.0))


def _inputs(shape: tuple[int, ...], channels_last: bool) -> torch.Tensor:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("block_type", [SameBlock2d, DownBlock2d])
def test_folded_conv_block_equals_conv_norm_relu(block_type: type[nn.Module]) -> None:
    block = _trained_like(block_type(6, 10), seed=1)
    x = _inputs((2, 6, 12, 16), channels_last=False)
    with torch.no_grad():
        _assert_same(FoldedConvBlock(block)(x), block(x))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(5, 7), (8, 8), (1, 3)])
def test_subpixel_up_block_equals_upsample_then_conv(
    size: tuple[int, int], channels_last: bool
) -> None:
    block = _trained_like(UpBlock2d(6, 4), seed=2)
    x = _inputs((2, 6, *size), channels_last)
    with torch.no_grad():
        expected, fused = block(x), SubPixelUpBlock(block)(x)
    _assert_same(fused, expected)
    assert fused.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


def test_subpixel_kernels_keep_the_sum_of_taps() -> None:
    # Each phase reads every tap of the 3x3 kernel exactly once.
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    phases = subpixel_kernels(weight).view(4, 3, 2, 2, 2)
    for phase in phases:
        torch.testing.assert_close(phase.sum((2, 3)), weight.sum((2, 3)))


def test_folded_res_block_equals_res_block() -> None:
    block = _trained_like(ResBlock2d(8), seed=3)
    x = _inputs((2, 8, 9, 11), channels_last=False)
    with torch.no_grad():
        _assert_same(FoldedResBlock(block)(x), block(x))


def test_fold_needs_running_statistics() -> None:
    block = SameBlock2d(3, 4)
    block.norm = nn.BatchNorm2d(4, track_running_stats=False)
    with pytest.raises(ValueError, match="running statistics"):
        FoldedConvBlock(block)


def test_fused_networks_match_and_leave_the_original_alone(tiny_networks: MCNet) -> None:
    keys = {k: v.clone() for k, v in tiny_networks.state_dict().items()}
    fused = fuse_for_inference(tiny_networks)
    # The original keeps its published blocks and weights; the copy has none of them left.
    assert tiny_networks.state_dict().keys() == keys.keys()
    for key, value in tiny_networks.state_dict().items():
        assert torch.equal(value, keys[key])
    published = (SameBlock2d, DownBlock2d, UpBlock2d, ResBlock2d)
    assert not any(isinstance(m, published) for m in fused.modules())
    assert sum(isinstance(m, SubPixelUpBlock) for m in fused.modules()) > 0

    image = torch.from_numpy(random_frames(2, seed=4)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        kp, kp_fused = tiny_networks.kp_detector(image), fused.kp_detector(image)
        _assert_same(kp_fused.value, kp.value)
        noise = torch.zeros(2, tiny_networks.generator.num_down_blocks, 1, 1, 1)
        noise = noise.expand(-1, -1, -1, *tiny_networks.generator.mbUnit.mb.shape[2:])
        out = tiny_networks.generator(image[:1], kp.first(), kp, noise).prediction
        out_fused = fused.generator(image[:1], kp.first(), kp, noise).prediction
    _assert_same(out_fused, out)
