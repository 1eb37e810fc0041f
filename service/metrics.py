"""Prometheus metrics of the API and of the workers; every name starts with `mcnet_`.

Each process builds its own `CollectorRegistry` (no module-level metric objects), so
apps and workers made in tests do not share state. Queue depth and jobs by state are
read from Redis when Prometheus scrapes, never cached.

API (`/metrics` of `mcnet api`):
    mcnet_http_requests_total{method,route,status}   requests answered
    mcnet_http_request_seconds{method,route}         request latency (histogram)
    mcnet_jobs_submitted_total                       jobs accepted by POST /animate
    mcnet_upload_bytes_total{part}                   bytes received per part (source, driving)
    mcnet_queue_depth                                jobs waiting in the queue
    mcnet_jobs{status}                               jobs in Redis by state
    mcnet_workers_alive                              workers with a recent heartbeat
Worker (`/metrics` on MCNET_METRICS_PORT of each `mcnet worker`):
    mcnet_worker_frames_animated_total               frames the model produced
    mcnet_worker_batch_seconds                       seconds per frame batch (histogram)
    mcnet_worker_job_seconds                         seconds per job, by outcome (histogram)
    mcnet_worker_jobs_total{outcome}                 finished, failed, canceled, requeued
    mcnet_worker_job_frames_done                     current job: frames done
    mcnet_worker_job_frames                          current job: frames in all
    mcnet_worker_model_load_seconds                  seconds the model took to load
    mcnet_worker_busy                                1 while a job runs
    mcnet_worker_info{name,device,precision}         constant 1, labels describe the worker
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
_JOB_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)


class ApiMetrics:
    """Metrics of one API process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "mcnet_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "mcnet_http_request_seconds",
            "Seconds to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.jobs_submitted = Counter(
            "mcnet_jobs_submitted", "Jobs accepted by POST /animate.", registry=registry
        )
        self.upload_bytes = Counter(
            "mcnet_upload_bytes", "Bytes received in uploads, by part.", ["part"], registry=registry
        )


class QueueCollector(Collector):
    """Reads queue depth, jobs by state and live workers from Redis at scrape time."""

    def __init__(
        self,
        depth: Callable[[], int],
        counts: Callable[[], dict[str, int]],
        workers: Callable[[], int],
    ) -> None:
        self._depth = depth
        self._counts = counts
        self._workers = workers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the gauges; nothing when Redis cannot be read (the scrape still works)."""
        try:
            depth, counts, workers = self._depth(), self._counts(), self._workers()
        except RedisError as exc:
            logger.warning("queue metrics unavailable: %s", exc)
            return
        yield GaugeMetricFamily("mcnet_queue_depth", "Jobs waiting in the queue.", value=depth)
        family = GaugeMetricFamily("mcnet_jobs", "Jobs kept in Redis, by state.", labels=["status"])
        for status, count in counts.items():
            family.add_metric([status], count)
        yield family
        yield GaugeMetricFamily(
            "mcnet_workers_alive", "Workers with a recent heartbeat.", value=workers
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Nothing to describe up front (values come from Redis)."""
        return iter(())


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
