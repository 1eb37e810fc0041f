"""Prometheus metrics of one worker (`/metrics` on MCNET_METRICS_PORT of each `mcnet worker`).

Every name starts with `mcnet_` (the process collector's `process_*` aside); each worker
builds its own `CollectorRegistry`:

    mcnet_worker_frames_animated_total               frames the model produced
    mcnet_worker_batch_seconds                       seconds per frame batch (histogram)
    mcnet_worker_job_seconds{outcome}                seconds per run on this worker (histogram)
    mcnet_worker_jobs_total{outcome}                 finished, failed, canceled, requeued,
                                                     lost (another worker owns the job),
                                                     unrecorded (Redis refused the outcome)
    mcnet_worker_job_failures_total{reason}          failed runs by reason class (FAILURE_REASONS)
    mcnet_job_queue_wait_seconds{outcome}            submit to start of each run (histogram)
    mcnet_job_end_to_end_seconds{outcome}            submit to end of a job that ended here:
                                                     finished, failed, canceled (histogram)
    mcnet_worker_render_frames_per_second{device}    frames per second of the last job's render
    mcnet_worker_device_memory_bytes{device}         CUDA: device memory in use (allocated)
    mcnet_worker_device_memory_peak_bytes{device}    CUDA: the most in use since start
    mcnet_worker_job_frames_done                     current job: frames done
    mcnet_worker_job_frames                          current job: frames in all
    mcnet_worker_model_load_seconds                  seconds the model took to load
    mcnet_worker_busy                                1 while a job runs
    mcnet_worker_info{name,device,precision}         constant 1, labels describe the worker
    mcnet_worker_webhooks_total{event,outcome}       webhook messages: delivered, retried,
                                                     failed, refused, dropped, skipped
    process_start_time_seconds, ...                  the process (restarts show as changes)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
_JOB_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)
_WAIT_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
# The reason classes of mcnet_worker_job_failures_total (worker.failures decides them).
FAILURE_REASONS = ("input", "model", "storage", "redis", "timeout", "lost_lease", "internal")
ENDED_OUTCOMES = ("finished", "failed", "canceled")  # outcomes of a job that ended


class WorkerMetrics:
    """Metrics of one worker process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.device = ""  # set by describe(): the label of render_fps
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
            "Seconds per run of a job on this worker, by outcome.",
            ["outcome"],
            buckets=_JOB_BUCKETS,
            registry=registry,
        )
        self.jobs = Counter(
            "mcnet_worker_jobs",
            "Runs of jobs ended on this worker, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "mcnet_worker_job_failures",
            "Failed runs by reason class: input, model, storage, redis, timeout, lost_lease, "
            "internal.",
            ["reason"],
            registry=registry,
        )
        for reason in FAILURE_REASONS:  # every class shows, at 0 until it happens
            self.failures.labels(reason)
        self.queue_wait = Histogram(
            "mcnet_job_queue_wait_seconds",
            "Seconds from a job's submit to the start of its run, by the run's outcome.",
            ["outcome"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.end_to_end = Histogram(
            "mcnet_job_end_to_end_seconds",
            "Seconds from a job's submit to its end (finished: result stored), by outcome.",
            ["outcome"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        for outcome in ENDED_OUTCOMES:  # a series that starts at 1 would hide its first rise
            self.jobs.labels(outcome)
            self.queue_wait.labels(outcome)
            self.end_to_end.labels(outcome)
        self.render_fps = Gauge(
            "mcnet_worker_render_frames_per_second",
            "Frames per second of the last job's render (model and encoding), by device.",
            ["device"],
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
        ProcessCollector(registry=registry)

    def describe(self, name: str, device: str, precision: str) -> None:
        """Label this worker (mcnet_worker_info) and the device its render speed is of."""
        self.device = device
        self.info.labels(name, device, precision).set(1)
        self.render_fps.labels(device).set(0)


class DeviceMemoryCollector(Collector):
    """CUDA memory of one device, read when Prometheus scrapes: in use and the peak."""

    def __init__(self, device: str, in_use: Callable[[], int], peak: Callable[[], int]) -> None:
        self._device = device
        self._in_use = in_use
        self._peak = peak

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The two gauges, labelled with the device."""
        for name, text, read in (
            ("mcnet_worker_device_memory_bytes", "Device memory in use (allocated).", self._in_use),
            (
                "mcnet_worker_device_memory_peak_bytes",
                "Most device memory in use since the worker started.",
                self._peak,
            ),
        ):
            family = GaugeMetricFamily(name, text, labels=["device"])
            family.add_metric([self._device], float(read()))
            yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Nothing up front (read at scrape time)."""
        return iter(())


def register_device_memory(registry: CollectorRegistry, device: str) -> bool:
    """Add the CUDA memory gauges when `device` is a CUDA device; False (nothing added)
    on other devices."""
    if not device.startswith("cuda"):
        return False
    import torch

    index = torch.device(device)
    registry.register(
        DeviceMemoryCollector(
            device,
            lambda: torch.cuda.memory_allocated(index),
            lambda: torch.cuda.max_memory_allocated(index),
        )
    )
    return True
