"""Precisions: which devices may run them (from the device's capabilities), the fp32 islands,
and bf16 on this CPU against fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.animator import Animator
from model.mixed_precision import FP32_ISLANDS, Fp32Island, to_mixed_precision
from model.networks import MCNet
from model.precision import PrecisionError, cpu_flags, unsupported_reason
from tests.model.conftest import random_frames

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx2 avx512f {extra}
bugs\t\t: spectre_v1
"""


def test_cpu_flags_read_from_cpuinfo_text() -> None:
    flags = cpu_flags(CPUINFO.format(extra="avx512_bf16 amx_tile"))
    assert {"avx2", "avx512f", "avx512_bf16", "amx_tile"} <= flags
    assert "spectre_v1" not in flags
    assert cpu_flags("processor\t: 0\nFeatures\t: fp asimd\n") == frozenset()


@pytest.mark.parametrize(
    ("extra", "supported"),
    [("avx512_bf16", True), ("amx_bf16 amx_tile", True), ("avx512_vnni", False), ("", False)],
)
def test_bf16_on_cpu_needs_avx512_bf16_or_amx(extra: str, supported: bool) -> None:
    flags = cpu_flags(CPUINFO.format(extra=extra))
    reason = unsupported_reason("bf16", "cpu", flags, cuda_bf16=False)
    if supported:
        assert reason is None
    else:
        assert reason is not None and "AVX-512 BF16 or AMX" in reason


def test_other_precisions_by_device() -> None:
    none: frozenset[str] = frozenset()
    assert unsupported_reason("fp32", "cpu", none, cuda_bf16=False) is None
    assert unsupported_reason("fp32", "mps", none, cuda_bf16=False) is None
    assert unsupported_reason("fp16", "cuda", none, cuda_bf16=False) is None
    assert unsupported_reason("bf16", "cuda", none, cuda_bf16=True) is None
    assert "compute capability 8.0" in str(unsupported_reason("bf16", "cuda", none, False))
    assert "CUDA" in str(unsupported_reason("fp16", "cpu", {"avx512_bf16"}, False))
    assert "mps" in str(unsupported_reason("bf16", "mps", {"avx512_bf16"}, False))
    assert "unknown precision 'int8'" in str(unsupported_reason("int8", "cpu", none, False))


def test_animator_refuses_fp16_on_cpu(tiny_networks: MCNet) -> None:
    with pytest.raises(PrecisionError, match="fp16 needs a CUDA GPU; use fp32"):
        Animator(tiny_networks, device="cpu", precision="fp16")


def test_mixed_precision_keeps_islands_fp32(tiny_networks: MCNet) -> None:
    from model.fusion import fuse_for_inference

    mixed = to_mixed_precision(fuse_for_inference(tiny_networks), torch.bfloat16)
    for path in FP32_ISLANDS:
        island = mixed.get_submodule(path)
        assert isinstance(island, Fp32Island)
        assert all(p.dtype == torch.float32 for p in island.parameters())
    assert mixed.generator.mbUnit.mb.dtype == torch.bfloat16
    norms = [
        m for m in mixed.modules() if isinstance(m, torch.nn.BatchNorm2d | torch.nn.InstanceNorm2d)
    ]
    assert norms and all(p.dtype == torch.float32 for m in norms for p in m.parameters())


def test_bf16_runs_where_the_cpu_supports_it(tiny_networks: MCNet) -> None:
    """On a CPU with AVX-512 BF16 or AMX (this project's machines), bf16 runs and stays
    near fp32, with the keypoints (an fp32 island) unchanged; elsewhere it is refused."""
    if unsupported_reason("bf16", "cpu", cpu_flags(), cuda_bf16=False) is not None:
        with pytest.raises(PrecisionError, match="AVX-512 BF16 or AMX"):
            Animator(tiny_networks, device="cpu", precision="bf16")
        return
    source, driving = random_frames(1, seed=23)[0], random_frames(3, seed=24)
    exact = Animator(tiny_networks, device="cpu", batch_size=2)
    reduced = Animator(tiny_networks, device="cpu", precision="bf16", batch_size=2)
    a = torch.cat(list(exact.animate_batches(source, driving)))
    b = torch.cat(list(reduced.animate_batches(source, driving)))
    assert b.dtype == torch.float32 and b.shape == a.shape
    psnr = 10 * np.log10(1 / float(((a - b) ** 2).mean()))
    assert 40 < psnr < 120  # close, and not silently the fp32 path
    kp_exact, kp_reduced = exact.keypoints(driving), reduced.keypoints(driving)
    torch.testing.assert_close(kp_reduced.value, kp_exact.value, rtol=0, atol=1e-6)
