"""The reduced-precision serving copy (`bf16`, `fp16`): the fused networks with their weights
in the 16-bit type, run under autocast, except a few fp32 islands.

An island is a module whose weights stay fp32 and which runs with autocast off, its inputs
cast to fp32. The islands were chosen by measurement, layer by layer: `benchmarks/precision.py
--islands` turns each one back to bf16 alone and reports the PSNR against fp32 and the module's
own time per frame. Measured on the 2-core AVX-512 BF16/AMX CPU, conformance fixture weights,
on the fixture's frames / on the benchmark's H.264 video (bf16 with every island: 51.3 / 55.5 dB):

| island | dB lost in bf16 | its ms/frame, fp32 vs bf16 (fixture; video) |
| --- | --- | --- |
| `kp_detector` (keypoints, jacobians) | 1.4 / 1.7 | 236 vs 432; 455 vs 281 (within noise) |
| `generator.dense_motion_network.mask` | 1.0 / 1.6 | 15 vs 11; 24 vs 29 |
| `generator.dense_motion_network.occlusion` | 0.1 / 0.2 | 18 vs 18; 30 vs 35 |
| `generator.final` (the sigmoid's input) | 0.3 / 0.7 | 70 vs 31; 90 vs 66 |
| `generator.dense_motion_network.down`: not kept | 0.0 / 0.0 | 7 vs 15; 2 vs 19 |

Together they cost a few percent of a bf16 frame (1.3 to 1.8 s here) and gain 3 to 4 dB
(the sum of the losses above: 2.8 / 4.2 dB). Why they matter: the keypoints and jacobians are
the motion itself, and their 2x2 inverses and hull areas (keypoint normalisation) amplify their
rounding; in fp32 they equal the fp32 path's, so `best_frame` and the movement scale do not
change with the precision. The mask conv's softmax weighs the sparse motions into the dense
flow; the occlusion conv's sigmoid and the final conv's sigmoid make pixel values directly.

Outside the modules, the dense flow and every warp stay fp32 (`grid_sample` with an fp32 grid,
in `model.dense_motion` and `model.generator`): a bf16 grid misplaces samples by up to half a
pixel; measured with an earlier scratch run of the same kind, sampling with the fp32 grid gained
0.6 dB (fixture) and 1.0 dB (drawn faces) at no measurable cost (CPU autocast runs `grid_sample`
in fp32 anyway; only the grid's rounding is avoided). The keypoint normalisation and the jacobian
inverses run on the fp32 keypoints.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import nn

from model.networks import MCNet

NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d)
FP32_ISLANDS: tuple[str, ...] = (
    "kp_detector",
    "generator.dense_motion_network.mask",
    "generator.dense_motion_network.occlusion",
    "generator.final",
)


class Fp32Island(nn.Module):
    """Runs `module` in fp32 (autocast off, floating-point tensor inputs cast to fp32) inside
    a reduced-precision network."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args: object) -> object:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        device_type = tensors[0].device.type if tensors else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):
            return self.module(*(_fp32(a) for a in args))


def _fp32(value: object) -> object:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    return value


def to_mixed_precision(
    networks: MCNet, dtype: torch.dtype, islands: Collection[str] = FP32_ISLANDS
) -> MCNet:
    """Wrap each of `islands` (module paths) in `Fp32Island` and cast the other floating
    parameters and buffers of `networks` to `dtype`, in place (meant for the fused copy).

    Norms keep fp32 statistics and affine weights: their kernels take a 16-bit or fp32 input
    with fp32 parameters, and an input can be either (a 16-bit conv output concatenated with
    an fp32 warp gives fp32)."""
    kept: set[int] = set()
    for path in islands:
        parent_path, _, name = path.rpartition(".")
        parent = networks.get_submodule(parent_path) if parent_path else networks
        module = getattr(parent, name)
        if not isinstance(module, nn.Module):
            raise ValueError(f"{path} is not a module of the networks")
        kept.update(id(t) for t in [*module.parameters(), *module.buffers()])
        setattr(parent, name, Fp32Island(module))
    for module in networks.modules():
        if isinstance(module, NORMS):
            continue
        for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            if tensor.is_floating_point() and id(tensor) not in kept:
                tensor.data = tensor.data.to(dtype)
    return networks
