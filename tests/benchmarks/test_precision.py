"""The precision benchmark runs end to end (tiny model, a few frames of its own video)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from model.mixed_precision import FP32_ISLANDS
from model.precision import cpu_flags, unsupported_reason

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_reports_each_precision_against_fp32(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    command = [sys.executable, str(REPO / "benchmarks" / "precision.py"), "--device", "cpu"]
    command += ["--config", "tiny", "--frames", "3", "--repeats", "1", "--islands"]
    done = subprocess.run(
        [*command, "--json", str(out)], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    rows = {(r["inputs"], r["precision"]): r for r in result["rows"]}
    assert rows[("video", "fp32")]["frames"] == 3 and rows[("video", "fp32")]["speedup"] == 1.0
    if unsupported_reason("bf16", "cpu", cpu_flags(), cuda_bf16=False) is not None:
        assert set(rows) == {("video", "fp32")} and result["islands"] == []
        return
    bf16 = rows[("video", "bf16")]
    assert 40 < bf16["psnr_db"] < 120 and 0 < bf16["max_abs_diff"] < 0.5
    assert bf16["frames_per_s"] > 0 and bf16["speedup"] > 0
    assert [i["island"] for i in result["islands"]] == list(FP32_ISLANDS)
    assert all(i["ms_per_frame_fp32"] > 0 for i in result["islands"])
