"""Prometheus metrics of the API; every name starts with `mcnet_` (the worker's: worker.metrics).

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
    mcnet_worker_starts_total{result}                workers' starts: loaded, failed (Redis)
    mcnet_redis_up, mcnet_storage_up                 1 when Redis / the store answer
    mcnet_jobs_submitted_by_key_total{key}           jobs accepted, by API key name
    mcnet_rate_limited_total{key,reason}             requests refused 429 by key name and reason
    mcnet_event_streams                              open progress streams (GET /jobs/{id}/events)
    mcnet_event_reads_total                          reads of all watched jobs (one per tick)
    mcnet_template_jobs_total                        jobs accepted from a motion template
    mcnet_templates_created_total{outcome}           template extractions ended (Redis)
    mcnet_template_bytes                             bytes of motion templates stored now
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


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
        self.jobs_by_key = Counter(
            "mcnet_jobs_submitted_by_key",
            "Jobs accepted by POST /animate, by API key name (anonymous without keys).",
            ["key"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "mcnet_rate_limited",
            "Requests answered 429, by key name and reason (requests, concurrent_jobs, "
            "queue_full, frame_budget).",
            ["key", "reason"],
            registry=registry,
        )
        self.event_streams = Gauge(
            "mcnet_event_streams", "Open progress event streams.", registry=registry
        )
        self.template_jobs = Counter(
            "mcnet_template_jobs",
            "Jobs accepted by POST /animate from a motion template (`template`).",
            registry=registry,
        )
        self.event_reads = Counter(
            "mcnet_event_reads",
            "Reads of all watched jobs by the shared poller (one per tick, whatever the "
            "number of streams).",
            registry=registry,
        )


class QueueCollector(Collector):
    """Reads queue depth, jobs by state, live workers and workers' starts from Redis, and
    whether Redis and the store answer, at scrape time."""

    def __init__(
        self,
        depth: Callable[[], int],
        counts: Callable[[], dict[str, int]],
        workers: Callable[[], int],
        starts: Callable[[], dict[str, int]] | None = None,
        storage_ok: Callable[[], bool] | None = None,
    ) -> None:
        self._depth = depth
        self._counts = counts
        self._workers = workers
        self._starts = starts
        self._storage_ok = storage_ok

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges; without Redis only `mcnet_redis_up 0` and the store's gauge.
        (`starts` and `storage_ok` not given: their metrics are left out.)"""
        if self._storage_ok is not None:
            yield GaugeMetricFamily(
                "mcnet_storage_up",
                "1 when the file store can be written, else 0.",
                value=1 if self._storage_ok() else 0,
            )
        try:
            depth, counts, workers = self._depth(), self._counts(), self._workers()
            starts = self._starts() if self._starts is not None else None
        except RedisError as exc:
            logger.warning("queue metrics unavailable: %s", exc)
            yield GaugeMetricFamily("mcnet_redis_up", "1 when Redis answers, else 0.", value=0)
            return
        yield GaugeMetricFamily("mcnet_redis_up", "1 when Redis answers, else 0.", value=1)
        yield GaugeMetricFamily("mcnet_queue_depth", "Jobs waiting in the queue.", value=depth)
        family = GaugeMetricFamily("mcnet_jobs", "Jobs kept in Redis, by state.", labels=["status"])
        for status, count in counts.items():
            family.add_metric([status], count)
        yield family
        yield GaugeMetricFamily(
            "mcnet_workers_alive", "Workers with a recent heartbeat.", value=workers
        )
        if starts is None:
            return
        started = CounterMetricFamily(
            "mcnet_worker_starts",
            "Worker starts by result: loaded (model on its device), failed (the worker could "
            "not start: model, storage or settings).",
            labels=["result"],
        )
        for result, count in sorted(starts.items()):
            started.add_metric([result], count)
        yield started

    def describe(self) -> Iterator[Metric]:
        """Nothing to describe up front (values come from Redis)."""
        return iter(())


class TemplateCollector(Collector):
    """Motion templates made (extractions ended, by outcome, counted in Redis by the
    workers) and the bytes of templates stored now, read at scrape time."""

    def __init__(self, made: Callable[[], dict[str, int]], stored: Callable[[], int]) -> None:
        self._made = made
        self._stored = stored

    def collect(self) -> Iterator[Metric]:
        """Yield both; nothing without Redis (`mcnet_redis_up` says so)."""
        try:
            made, stored = self._made(), self._stored()
        except RedisError as exc:
            logger.warning("template metrics unavailable: %s", exc)
            return
        family = CounterMetricFamily(
            "mcnet_templates_created",
            "Motion template extractions ended on the workers, by outcome: finished (made), "
            "failed, canceled.",
            labels=["outcome"],
        )
        for outcome, count in sorted(made.items()):
            family.add_metric([outcome], count)
        yield family
        yield GaugeMetricFamily(
            "mcnet_template_bytes",
            "Bytes of motion templates stored now (made, not expired), across keys.",
            value=stored,
        )

    def describe(self) -> Iterator[Metric]:
        """Nothing to describe up front (values come from Redis)."""
        return iter(())
