"""Numeric precision of a run, and the process-wide switches it needs.

`fp32` is exact: it reproduces the published model's numbers (within float rounding).
"""

from __future__ import annotations

from typing import Literal

import torch

Precision = Literal["fp32", "fp16"]


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
