"""Numeric precision of a run: which precisions a device supports, and the process-wide
switches each needs.

- `fp32` is exact: it reproduces the published model's numbers (within float rounding).
- `bf16` runs most of the networks in bfloat16 (`model.mixed_precision`) on a CPU with
  AVX-512 BF16 or AMX, or on a CUDA GPU that supports bfloat16 (compute capability 8.0+).
- `fp16` does the same in float16, on CUDA only (CPUs have no fast float16 kernels).

A CPU without bf16 instructions would emulate bfloat16 slower than fp32, so it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from core.errors import MCNetError
from core.protocol import PRECISIONS, Precision

REDUCED_DTYPES: dict[Precision, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}
# /proc/cpuinfo flags of the x86 instructions that compute bfloat16 products in hardware.
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


class PrecisionError(MCNetError):
    """The precision asked for is unknown or not supported by the device."""


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: the `flags` line of `/proc/cpuinfo` (or of `cpuinfo`, its
    text); empty where there is none (not Linux, not x86)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def unsupported_reason(
    precision: str, device_type: str, flags: Iterable[str], cuda_bf16: bool
) -> str | None:
    """Why `precision` cannot run on a device of `device_type` ("cpu", "cuda", ...), given the
    CPU's feature flags and whether the GPU supports bfloat16; None when it can."""
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}"
    if precision == "fp32":
        return None
    if device_type == "cuda":
        if precision == "bf16" and not cuda_bf16:
            return "bf16 needs a GPU with bfloat16 support (compute capability 8.0 or newer)"
        return None
    if device_type == "cpu" and precision == "bf16":
        if CPU_BF16_FLAGS.isdisjoint(flags):
            return (
                "bf16 needs a CPU with AVX-512 BF16 or AMX (CPU flags avx512_bf16 or amx_bf16); "
                "this CPU has neither"
            )
        return None
    if precision == "fp16":
        return "fp16 needs a CUDA GPU"
    return f"{precision} is not supported on {device_type} devices"


def check_precision(precision: Precision, device: torch.device) -> None:
    """PrecisionError (saying what to use instead) where `device` does not support
    `precision` (or it is not one of PRECISIONS)."""
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    flags = cpu_flags() if device.type == "cpu" else frozenset()
    reason = unsupported_reason(precision, device.type, flags, cuda_bf16)
    if reason is not None:
        raise PrecisionError(f"precision {precision} cannot run here: {reason}; use fp32")


def set_process_precision(device: str | torch.device, precision: Precision) -> None:
    """Process-wide math settings for running `precision` on `device`. Call it once at an
    entry point (worker start, command line, benchmark) before the first run: it changes
    every model of the process, so no constructor does it.

    fp32 on CUDA turns TF32 off: PyTorch would otherwise run fp32 convolutions in TF32,
    which moves the official code's outputs by about 2.4e-3 (conformance fixture's notes).
    """
    if torch.device(device).type == "cuda" and precision == "fp32":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
