"""The worker's metrics: names and units by Prometheus' rules (promtool), every reason and
outcome present from the start, CUDA memory read at scrape time."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from worker.metrics import FAILURE_REASONS, DeviceMemoryCollector, WorkerMetrics


def test_worker_metrics_pass_promtool_with_every_class_at_zero() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.describe("w1", "cpu", "fp32")
    in_use = iter([1024, 2048])
    registry.register(DeviceMemoryCollector("cuda:0", lambda: next(in_use), lambda: 4096))
    text = generate_latest(registry).decode()
    for reason in FAILURE_REASONS:
        assert f'mcnet_worker_job_failures_total{{reason="{reason}"}} 0.0' in text
    for outcome in ("finished", "failed", "canceled"):
        assert f'mcnet_job_end_to_end_seconds_count{{outcome="{outcome}"}} 0.0' in text
    assert 'mcnet_worker_render_frames_per_second{device="cpu"} 0.0' in text
    assert 'mcnet_worker_device_memory_bytes{device="cuda:0"} 1024.0' in text
    assert 'mcnet_worker_device_memory_peak_bytes{device="cuda:0"} 4096.0' in text
    assert "process_start_time_seconds" in text
    again = generate_latest(registry).decode()  # read again at the next scrape
    assert 'mcnet_worker_device_memory_bytes{device="cuda:0"} 2048.0' in again
    promtool = shutil.which("promtool")
    if promtool is None:
        raise RuntimeError("`promtool` is needed: apt-get install prometheus")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
