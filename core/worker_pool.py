"""The worker processes of one host: started per `core.host_layout`, each restarted when it
exits. `mcnet serve` runs them beside the API; `mcnet workers` (the compose worker service)
runs only them.

Each worker is a `mcnet worker` child with its own name (`PREFIX-N`), metrics port (the
setting + N), threads (OMP_NUM_THREADS / MKL_NUM_THREADS) and, on CUDA, its GPU
(CUDA_VISIBLE_DEVICES). A worker that exits is started again after 1 s, doubling up to a
minute while it keeps failing at once; its registration is dropped meanwhile, so readiness
counts only workers that run. A worker that exits with code 2 (a wrong setting, checkpoint
or device) is not started again, and `mcnet workers` exits 2 once none is left. Stopping
sends SIGTERM to all at once (each finishes or requeues its job), then waits.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from core.cli_options import MODEL_OPTIONS, add_layout_options, add_model_options, given_options
from core.host_layout import WORKER_BYTES, Host, WorkerLayout, plan_workers
from core.jobs import JobQueue
from core.logs import configure_logging
from core.settings import WorkerSettings, settings_from_env

logger = logging.getLogger(__name__)

STOP_WAIT_S = 40.0
_RESTART_FIRST_S = 1.0
_RESTART_MAX_S = 60.0


def die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when its parent dies, however it dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(process: subprocess.Popen[bytes] | None, what: str, wait: float) -> None:
    """SIGTERM `process`, wait up to `wait` seconds, then SIGKILL it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    await_process(process, what, wait)


def await_process(process: subprocess.Popen[bytes], what: str, wait: float) -> None:
    """Wait up to `wait` seconds for `process` to end, then SIGKILL it."""
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop in %.0f s; killing it", what, wait)
        process.kill()
        process.wait()


def model_flags(options: Mapping[str, object]) -> list[str]:
    """`mcnet worker` flags for model options (field name -> value) a command line gave."""
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags += [flag] if value else []
        else:
            flags += [flag, str(value)]
    return flags


CONFIG_EXIT = 2  # a worker's exit for a wrong setting: starting it again would fail alike


class WorkerSupervisor:
    """Runs one worker process and starts it again whenever it exits, until `stop`."""

    def __init__(self, command: list[str], env: dict[str, str], jobs: JobQueue, name: str) -> None:
        self.command = [*command, "--name", name]
        self.env = env
        self.jobs = jobs
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.exits = 0
        self.gave_up = False  # it exited with CONFIG_EXIT: not started again
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> subprocess.Popen[bytes]:
        """Start the worker, and the thread that restarts it."""
        process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name=f"{self.name}-watch", daemon=True)
        self._watcher.start()
        return process

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._lock:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl+C reaches the parent, which stops workers
                preexec_fn=die_with_parent,
            )
            return self.process

    def _watch(self) -> None:
        delay = _RESTART_FIRST_S
        while self.process is not None:
            started = time.monotonic()
            code = self.process.wait()
            self.exits += 1
            if self._stopping.is_set():
                return
            if code == CONFIG_EXIT:
                logger.error(
                    "the worker %s exited with code %d (a wrong setting, checkpoint or device; "
                    "its log says which): not starting it again",
                    self.name,
                    code,
                )
                self.gave_up = True
                return
            try:
                self.jobs.forget_worker(self.name)  # readiness: no worker until it is back
            except RedisError as exc:
                logger.warning("worker registration not removed: %s", exc)
            if time.monotonic() - started > _RESTART_MAX_S:
                delay = _RESTART_FIRST_S
            logger.error(
                "the worker %s exited (code %s); starting it again in %.0f s",
                self.name,
                code,
                delay,
            )
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
            self._spawn()
            delay = min(delay * 2, _RESTART_MAX_S)

    def signal_stop(self) -> None:
        """Stop restarting, and ask the worker to stop (it finishes or requeues its job)."""
        with self._lock:
            self._stopping.set()
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()

    def wait_stopped(self, wait: float = STOP_WAIT_S) -> None:
        """Wait for the worker asked to stop; SIGKILL it after `wait` seconds."""
        if self.process is not None:
            await_process(self.process, f"worker {self.name}", wait)
        if self._watcher is not None:
            self._watcher.join(5)


@dataclass
class WorkerPool:
    """The layout's worker processes, each supervised."""

    command: list[str]  # `mcnet worker` with its model options; the pool adds name and port
    env: dict[str, str]
    jobs: JobQueue
    layout: WorkerLayout
    prefix: str
    metrics_port: int

    def __post_init__(self) -> None:
        self.supervisors: list[WorkerSupervisor] = []
        for index in range(self.layout.workers):
            port = self.metrics_port + index if self.metrics_port else 0
            env = {
                **self.env,
                "OMP_NUM_THREADS": str(self.layout.threads),
                "MKL_NUM_THREADS": str(self.layout.threads),
            }
            gpu = self.layout.gpus[index]
            if gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = gpu
            command = [*self.command, "--metrics-port", str(port)]
            name = f"{self.prefix}-{index}"
            self.supervisors.append(WorkerSupervisor(command, env, self.jobs, name))

    def start(self) -> None:
        """Start every worker (and its restarter)."""
        for supervisor in self.supervisors:
            supervisor.start()

    def wait_ready(self, timeout: float = 600.0) -> bool:
        """Wait until a worker has loaded its model and registered; False when every
        worker exited before one did (a wrong checkpoint, device or setting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.jobs.live_workers() > 0:
                return True
            if all(supervisor.exits for supervisor in self.supervisors):
                return False
            time.sleep(0.2)
        return False

    def stop(self, wait: float = STOP_WAIT_S) -> None:
        """Ask every worker to stop at once, then wait for them all."""
        for supervisor in self.supervisors:
            supervisor.signal_stop()
        for supervisor in self.supervisors:
            supervisor.wait_stopped(wait)


def worker_command(options: Mapping[str, object]) -> list[str]:
    """The `mcnet worker` command line a pool runs, with the given model options."""
    return [sys.executable, "-m", "core.cli", "worker", *model_flags(options)]


def plan_for(settings: WorkerSettings) -> WorkerLayout:
    """The layout of `settings.workers` on this host, for the model `settings` loads."""
    host = Host.detect(settings.device)
    return plan_workers(
        settings.workers, host, WORKER_BYTES[settings.net_config], settings.worker_threads
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcnet workers",
        description="Run the worker processes this host serves best (one per GPU, or one "
        "single-thread worker per physical core), restarting each that exits. Settings come "
        "from the environment (REDIS_URL, STORAGE_URL, MCNET_*); options given here override "
        "them.",
    )
    add_layout_options(parser)
    add_model_options(parser)
    parser.add_argument(
        "--metrics-port", type=int, help="the first worker's /metrics port (MCNET_METRICS_PORT)"
    )
    parser.add_argument("--name", help="worker names' prefix (default: the host name)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mcnet workers`: runs until SIGTERM or Ctrl+C."""
    args = _parser().parse_args(argv)
    configure_logging()
    options = given_options(args, MODEL_OPTIONS)
    layout_options = given_options(args, ("workers", "worker_threads", "metrics_port"))
    settings = settings_from_env(WorkerSettings, {**options, **layout_options})
    if not settings.redis_url:
        logger.error("REDIS_URL is not set (or run `mcnet serve`, which starts Redis)")
        return 2
    layout = plan_for(settings)
    logger.info("%s", layout.describe())
    jobs = JobQueue(Redis.from_url(settings.redis_url), settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    pool = WorkerPool(
        command=worker_command(options),
        env=dict(os.environ),
        jobs=jobs,
        layout=layout,
        prefix=args.name or socket.gethostname(),
        metrics_port=settings.metrics_port,
    )
    pool.start()
    try:
        while not stop.wait(1.0):
            if all(supervisor.gave_up for supervisor in pool.supervisors):
                logger.error("every worker stopped on a wrong setting; exiting")
                return CONFIG_EXIT  # a container's restart policy gives up too (on-failure:5)
    finally:
        logger.info("stopping %d worker(s)", layout.workers)
        pool.stop()
    return 0
