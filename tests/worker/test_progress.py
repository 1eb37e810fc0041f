"""The task's progress reports: into the job (nothing without one) and the worker's gauges;
an animation's animating stage counts rendered frames, a template's extraction none."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from core.protocol import Progress, Stage
from worker.metrics import WorkerMetrics
from worker.rq_task import ProgressReporter


def _frames(metrics: WorkerMetrics) -> float:
    value = metrics.registry.get_sample_value("mcnet_worker_frames_animated_total")
    return 0.0 if value is None else value


def _report(renders: bool) -> WorkerMetrics:
    metrics = WorkerMetrics(CollectorRegistry())
    reporter = ProgressReporter(None, metrics, 8, lambda job: None, renders=renders)
    for done in (0, 4, 8):
        reporter.update(Progress(Stage.ANIMATING, done, 8))
    assert reporter.last == Progress(Stage.ANIMATING, 8, 8)
    assert metrics.registry.get_sample_value("mcnet_worker_job_frames_done") == 8
    return metrics


def test_rendered_frames_are_counted_for_an_animation_only() -> None:
    assert _frames(_report(renders=True)) == 8
    assert _frames(_report(renders=False)) == 0, "a template's keypoints are no frames"
