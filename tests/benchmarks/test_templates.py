"""The templates benchmark runs end to end (tiny model, a few frames): its figures and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_reports_both_paths_and_their_ratio(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    command = [sys.executable, str(REPO / "benchmarks" / "templates.py"), "--device", "cpu"]
    command += ["--config", "tiny", "--frames", "4", "--width", "320", "--height", "240"]
    command += ["--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "ratio template/video" in done.stdout
    result = json.loads(out.read_text())["result"]
    assert result["frames"] == 4
    assert result["video_frames_per_s"] > 0 and result["template_frames_per_s"] > 0
    ratio = result["template_frames_per_s"] / result["video_frames_per_s"]
    assert abs(result["speedup"] - ratio) < 1e-9
    assert 0 < result["template_sound_bytes"] < result["template_bytes"]
    seconds = 4 / 25
    assert abs(result["template_bytes_per_minute"] - result["template_bytes"] * 60 / seconds) < 1
