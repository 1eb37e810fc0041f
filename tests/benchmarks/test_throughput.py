"""The throughput benchmark runs end to end (tiny model, a few frames): its table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_writes_rows_against_the_baseline(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    command = [sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--device", "cpu"]
    command += ["--config", "tiny", "--frames", "2", "--repeats", "2", "--configs", "fp32"]
    command += ["--json", str(out)]
    command += ["--file-to-file", "--file-frames", "6", "--presets", "ultrafast", "medium"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "reference per-frame fp32 (official loop)" in done.stdout
    result = json.loads(out.read_text())
    assert result["environment"]["config"] == "tiny"
    baseline, animator, *file_rows = result["rows"]
    assert baseline["speedup"] == 1.0 and baseline["psnr_db"] is None
    assert animator["name"] == "animator fp32 (batch 1)" and animator["frames"] == 2
    # The serving path computes the literal reference's frames, up to float rounding.
    assert animator["max_abs_diff"] < 1e-4 and animator["psnr_db"] > 80
    assert animator["frames_per_s"] > 0 and animator["ms_per_frame"] > 0
    names = [row["name"] for row in file_rows]
    assert names == [f"file to file 1080p (fp32, x264 {p})" for p in ("ultrafast", "medium")]
    assert all(row["frames"] == 6 and row["frames_per_s"] > 0 for row in file_rows)
