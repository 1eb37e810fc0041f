"""Conformance on CUDA: the batched animator against the official code's fixture outputs.

fp32 (TF32 off) must be within 1e-3 max abs (the fixture was made on the CPU; TF32 alone
moves the official code by 2.4e-3); fp16 must reach 45 dB PSNR and bf16 40 dB (16-bit weights
under autocast with fp32 islands, `model.mixed_precision`). Exits 1 on failure.

    python benchmarks/cuda_conformance.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.quality import psnr  # noqa: E402
from model.animator import Animator  # noqa: E402
from model.precision import Precision, set_process_precision  # noqa: E402
from tests.conformance_fixture import fixture_networks, load_fixture  # noqa: E402

FP32_TOLERANCE = 1e-3
MIN_PSNR_DB: dict[Precision, float] = {"fp16": 45.0, "bf16": 40.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--device", default="cuda", help="cpu runs the fp32 check only")
    args = parser.parse_args()
    fixture = load_fixture()
    networks = fixture_networks(fixture)
    results = []
    ok = True
    precisions: tuple[Precision, ...] = ("fp32",)
    if args.device == "cuda":
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        precisions = ("fp32", "bf16", "fp16") if bf16 else ("fp32", "fp16")
    for precision in precisions:
        set_process_precision(args.device, precision)
        animator = Animator(
            networks,
            device=args.device,
            precision=precision,
            batch_size=4,
        )
        for mode in ("relative", "absolute"):
            batches = animator.animate_batches(
                fixture["source"], fixture["driving"], relative=mode == "relative", adapt_scale=True
            )
            out = torch.cat(list(batches)).permute(0, 2, 3, 1).cpu().numpy()
            expected = fixture[f"{mode}_prediction"]
            diff, quality = float(np.abs(out - expected).max()), psnr(out, expected)
            passed = (
                diff <= FP32_TOLERANCE if precision == "fp32" else quality >= MIN_PSNR_DB[precision]
            )
            ok &= passed
            results.append(
                {"precision": precision, "mode": mode, "max_abs": diff, "psnr_db": quality,
                 "passed": passed}
            )  # fmt: skip
            sys.stdout.write(
                f"{precision} {mode:<8} max abs {diff:.2e}  PSNR {quality:6.1f} dB  "
                f"{'ok' if passed else 'FAILED'}\n"
            )
            # The uint8 path (pinned copies, one batch in flight) hands out the same frames.
            frames = np.stack(
                list(
                    animator.animate(
                        fixture["source"], fixture["driving"], relative=mode == "relative"
                    )
                )
            )
            steps = int(np.abs(frames.astype(int) - np.round(out * 255).astype(int)).max())
            ok &= steps <= 1
            sys.stdout.write(f"{precision} {mode:<8} uint8 frames within {steps} step(s)\n")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"device": torch.cuda.get_device_name(), "results": results}, indent=2)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
