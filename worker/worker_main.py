"""`mcnet worker`: its command line, and the start-up that builds one `MCNetWorker`
(worker.rq_worker) from the settings: model, storage, metrics port, work folder."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from core.cli_options import MODEL_OPTIONS, add_model_options, given_options
from core.errors import MCNetError
from core.jobs import SERIALIZER, JobQueue
from core.logs import configure_logging
from core.settings import WorkerSettings, settings_from_env
from core.storage import open_storage
from worker.media.settings import MediaSettings
from worker.metrics import WorkerMetrics, register_device_memory
from worker.model_loading import describe_model, load_animator
from worker.rq_task import JOB_FOLDER_PREFIX
from worker.rq_worker import MCNetWorker
from worker.startup import wait_for_services
from worker.warmup import measure_speed
from worker.webhooks import webhook_sender
from worker.worker_identity import WorkerNameTakenError, pid_alive
from worker.worker_parts import WorkerParts

logger = logging.getLogger(__name__)


def prepare_work_dir(work_dir: Path | None) -> None:
    """Create the configured work folder (ValueError when it cannot be used) and sweep the
    job folders that workers which died on this host left in it."""
    if work_dir is not None:
        try:
            work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"MCNET_WORK_DIR {work_dir} cannot be created: {exc}") from exc
        if not os.access(work_dir, os.W_OK | os.X_OK):
            raise ValueError(f"MCNET_WORK_DIR {work_dir} is not writable")
    root = work_dir or Path(tempfile.gettempdir())
    pattern = re.compile(re.escape(JOB_FOLDER_PREFIX) + r"(\d+)-")
    for folder in root.glob(JOB_FOLDER_PREFIX + "*"):
        match = pattern.match(folder.name)
        if match is None or not folder.is_dir():
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("removed the work folder %s of a worker that stopped", folder.name)


def media_settings(settings: WorkerSettings) -> MediaSettings:
    """The media pipeline's settings, with the same input limits the API checks."""
    return MediaSettings(limits=settings.media_limits(), encode=settings.encode_settings())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcnet worker",
        description="Run one animation worker (RQ). Settings come from the environment "
        "(REDIS_URL, STORAGE_URL, MCNET_*); options given here override them.",
    )
    add_model_options(parser)
    parser.add_argument("--metrics-port", type=int, help="MCNET_METRICS_PORT (0: off)")
    parser.add_argument("--name", help="worker name (default: host.pid.random)")
    parser.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    return parser


def settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    """The environment's settings with the command line's values over them."""
    options = given_options(args, (*MODEL_OPTIONS, "metrics_port"))
    return settings_from_env(WorkerSettings, {**options, "worker_name": args.name})


def _record_start(settings: WorkerSettings, result: str) -> None:
    """Count this start in Redis (the API exports it: a worker that cannot load its model
    restarts too fast to be scraped itself)."""
    if not settings.redis_url:
        return
    try:
        JobQueue(
            Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5), settings
        ).record_worker_start(result)
    except RedisError as exc:
        logger.warning("worker start not counted in Redis: %s", exc)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mcnet worker`."""
    args = build_parser().parse_args(argv)
    configure_logging()
    settings = settings_from_args(args)
    if not settings.redis_url:
        logger.error("REDIS_URL is not set (or run `mcnet serve`, which starts Redis)")
        return 2
    if settings.health_file is not None:  # a restarted container's file is not this run's
        settings.health_file.unlink(missing_ok=True)
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    try:
        started = time.perf_counter()
        animator = load_animator(settings)
        metrics.model_load_seconds.set(time.perf_counter() - started)
        warmup = measure_speed(animator)
        logger.info("speed measured: %.2f frames/s", warmup[0] / warmup[1])
        storage = open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url)
        prepare_work_dir(settings.work_dir)
        connection = Redis.from_url(settings.redis_url, health_check_interval=30)
    except (MCNetError, ValueError) as exc:
        logger.error("%s", exc)
        _record_start(settings, "failed")
        return 2
    wait_for_services(connection, storage, settings)  # the model stays loaded meanwhile
    _record_start(settings, "loaded")
    name = settings.worker_name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    metrics.describe(name, str(animator.device), settings.precision)
    register_device_memory(registry, str(animator.device))
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
        except OSError as exc:
            logger.error(
                "The worker's metrics port %d on %s cannot be used (%s): set "
                "MCNET_METRICS_PORT to a free port, or 0 to turn the metrics off.",
                settings.metrics_port,
                settings.metrics_host,
                exc.strerror or exc,
            )
            return 2
        logger.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    queue = Queue(settings.queue_name, connection=connection, serializer=SERIALIZER)
    webhooks = webhook_sender(settings, connection, metrics)
    parts = WorkerParts(
        animator=animator,
        storage=storage,
        metrics=metrics,
        settings=settings,
        media_settings=media_settings(settings),
        model=describe_model(settings),
        webhooks=webhooks,
        warmup=warmup,
    )
    worker = MCNetWorker([queue], parts, name=name, connection=connection)
    try:
        worker.work(
            burst=args.burst, logging_level=logging.getLevelName(logger.getEffectiveLevel())
        )
    except WorkerNameTakenError as exc:
        logger.error("%s", exc)
        return 2
    finally:
        if webhooks is not None:
            webhooks.close(grace=settings.webhook_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
