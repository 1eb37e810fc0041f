"""The inference copy's fused blocks against the published blocks they replace, block by block."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model.config import MCNetConfig
from model.fused_memory import (
    FusedMemoryUnit,
    SharedWeightModulatedConv,
    TokenDynamicConv,
    compose_1x1,
)
from model.fusion import (
    FoldedConvBlock,
    FoldedResBlock,
    SubPixelUpBlock,
    fuse_for_inference,
    subpixel_kernels,
)
from model.layers import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from model.memory_bank import DynamicConv2d, MemoryUnit, ModulatedConv2d
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
    published = (SameBlock2d, DownBlock2d, UpBlock2d, ResBlock2d, MemoryUnit)
    assert not any(isinstance(m, published) for m in fused.modules())
    assert sum(isinstance(m, SubPixelUpBlock) for m in fused.modules()) > 0
    assert isinstance(fused.generator.mbUnit, FusedMemoryUnit)

    image = torch.from_numpy(random_frames(2, seed=4)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        kp, kp_fused = tiny_networks.kp_detector(image), fused.kp_detector(image)
        _assert_same(kp_fused.value, kp.value)
        noise = torch.zeros(2, tiny_networks.generator.num_down_blocks, 1, 1, 1)
        noise = noise.expand(-1, -1, -1, *tiny_networks.generator.mbUnit.mb.shape[2:])
        out = tiny_networks.generator(image[:1], kp.first(), kp, noise).prediction
        out_fused = fused.generator(image[:1], kp.first(), kp, noise).prediction
    _assert_same(out_fused, out)


def _random_weights(module: nn.Module, seed: int) -> nn.Module:
    """Every parameter drawn at random (untrained biases and the noise weight are zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.parameters():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
    return module.eval()


def test_shared_weight_modulated_conv_equals_per_sample_weights() -> None:
    conv = _random_weights(ModulatedConv2d(6, 5, 3, style_features=4), seed=5)
    x, style = _inputs((1, 6, 7, 7), False), torch.randn(3, 4)
    with torch.no_grad():
        expected = conv(x.expand(3, -1, -1, -1), style)
        _assert_same(SharedWeightModulatedConv(conv)(x, style), expected)
        _assert_same(SharedWeightModulatedConv(conv)(x.expand(3, -1, -1, -1), style), expected)


def test_token_dynamic_conv_equals_grouped_conv() -> None:
    conv = _random_weights(DynamicConv2d(6, 8, kernels=4, ratio=0.25, temperature=34), seed=6)
    x, y = _inputs((3, 6, 5, 5), False), torch.randn(3, 6, 4, 4)
    with torch.no_grad():
        expected = conv(x, y).flatten(2).transpose(1, 2)  # B x HW x Cout
        _assert_same(TokenDynamicConv(conv)(x.mean((2, 3)), y), expected)


def test_composed_1x1_equals_two_convs() -> None:
    inner, outer = nn.Conv2d(3, 6, 1), nn.Conv2d(6, 5, 1)
    _random_weights(inner, seed=7), _random_weights(outer, seed=8)
    x = _inputs((2, 3, 4, 4), False)
    weight, bias = compose_1x1(outer, inner)
    with torch.no_grad():
        _assert_same(F.conv2d(x, weight[:, :, None, None], bias), outer(inner(x)))


@pytest.mark.parametrize("with_noise", [False, True])
def test_fused_memory_unit_equals_reference_at_every_scale(with_noise: bool) -> None:
    config = MCNetConfig.tiny()
    unit = _random_weights(MemoryUnit(config), seed=9)
    assert isinstance(unit, MemoryUnit)
    fused = FusedMemoryUnit(unit)
    spatial = config.generator.memory.spatial
    kp = torch.rand(2, config.num_kp, 2) * 2 - 1
    noise = (
        torch.randn(2, 1, spatial, spatial) if with_noise else torch.zeros(2, 1, spatial, spatial)
    )
    for width in unit.widths:
        channels = 2 * unit.scale_layers(width)[1].out_channels
        feature = _inputs((2, channels, width, width), False)
        with torch.no_grad():
            expected = unit(feature, kp, noise)
            _assert_same(fused(feature, kp, noise), expected)
        # The passed-through half is the input's even channels, untouched.
        assert torch.equal(expected[:, 0::2], feature[:, 0::2])
