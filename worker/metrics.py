"""Prometheus metrics of one worker (`/metrics` on MCNET_METRICS_PORT of each `mcnet worker`).

Every name starts with `mcnet_`; each worker builds its own `CollectorRegistry`:

    mcnet_worker_frames_animated_total               frames the model produced
    mcnet_worker_batch_seconds                       seconds per frame batch (histogram)
    mcnet_worker_job_seconds                         seconds per job, by outcome (histogram)
    mcnet_worker_jobs_total{outcome}                 finished, failed, canceled, requeued,
                                                     lost (another worker owns the job),
                                                     unrecorded (Redis out of reach)
    mcnet_worker_job_frames_done                     current job: frames done
    mcnet_worker_job_frames                          current job: frames in all
    mcnet_worker_model_load_seconds                  seconds the model took to load
    mcnet_worker_busy                                1 while a job runs
    mcnet_worker_info{name,device,precision}         constant 1, labels describe the worker
    mcnet_worker_webhooks_total{event,outcome}       webhook messages: delivered, retried,
                                                     failed, refused, dropped, skipped
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
_JOB_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)


class WorkerMetrics:
    """Metrics of one worker process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.frames = Counter(
            "mcnet_worker_frames_animated", "Frames the model produced.", registry=registry
        )
        self.batch_seconds = Histogram(
            "mcnet_worker_batch_seconds",
            "Seconds per batch of frames through the model.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.job_seconds = Histogram(
            "mcnet_worker_job_seconds",
            "Seconds per job, by outcome.",
            ["outcome"],
            buckets=_JOB_BUCKETS,
            registry=registry,
        )
        self.jobs = Counter(
            "mcnet_worker_jobs",
            "Jobs ended on this worker, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.webhooks = Counter(
            "mcnet_worker_webhooks",
            "Webhook messages by event and outcome: delivered, retried (a try failed), failed "
            "(given up), refused (address not allowed), dropped (queue full), skipped (the "
            "job went back to the queue).",
            ["event", "outcome"],
            registry=registry,
        )
        self.frames_done = Gauge(
            "mcnet_worker_job_frames_done", "Frames done of the current job.", registry=registry
        )
        self.frames_total = Gauge(
            "mcnet_worker_job_frames", "Frames of the current job.", registry=registry
        )
        self.model_load_seconds = Gauge(
            "mcnet_worker_model_load_seconds",
            "Seconds the model took to load.",
            registry=registry,
        )
        self.busy = Gauge("mcnet_worker_busy", "1 while a job runs, else 0.", registry=registry)
        self.info = Gauge(
            "mcnet_worker_info",
            "Constant 1; the labels describe this worker.",
            ["name", "device", "precision"],
            registry=registry,
        )
