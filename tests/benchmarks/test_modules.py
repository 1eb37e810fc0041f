"""The module profile runs end to end (tiny model, a few frames): its table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from model.precision import cpu_flags, unsupported_reason

REPO = Path(__file__).resolve().parents[2]


def test_profile_times_each_module_per_precision(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    command = [sys.executable, str(REPO / "benchmarks" / "modules.py"), "--config", "tiny"]
    command += ["--repeats", "1", "--min-share", "0", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    bf16 = unsupported_reason("bf16", "cpu", cpu_flags(), cuda_bf16=False) is None
    precisions = ["fp32", "bf16"] if bf16 else ["fp32"]
    assert list(result["ms_per_frame"]) == precisions
    rows = {row["module"]: row["ms_per_frame"] for row in result["modules"]}
    # The generator's parts and the keypoint detector, an fp32 island under bf16 that goes
    # by its own path, are timed in every precision.
    for module in ("kp_detector", "generator.mbUnit", "generator.dense_motion_network"):
        assert all(rows[module][p] > 0 for p in precisions), module
    assert not any(".module" in name for name in rows)
    # A part takes no longer than the whole frame.
    for precision in precisions:
        whole = 1000 * result["ms_per_frame"][precision]
        assert 0 < rows["generator.mbUnit"][precision] < whole
    assert "whole frame" in done.stdout and "generator.mbUnit" in done.stdout
