"""`mcnet api`: serve the HTTP API with uvicorn (settings from the environment)."""

from __future__ import annotations

import argparse
import errno
import logging
import re
import signal
import socket
from types import FrameType

import uvicorn
import uvicorn.config
from prometheus_client import start_http_server

from core.logs import configure_logging, json_logs, log_level
from core.settings import ApiSettings, settings_from_env
from service.app import create_app

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcnet api",
        description="Run the HTTP API. Settings come from the environment (REDIS_URL, "
        "STORAGE_URL, API_KEYS, MCNET_*); options given here override them.",
    )
    parser.add_argument("--host", help="address to listen on (MCNET_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (MCNET_PORT, default 8000)")
    parser.add_argument(
        "--root-path", default="", help="path prefix when served behind a proxy under one"
    )
    return parser


_POLLING = re.compile(r"^/jobs/[^/?]+(/events)?(\?.*)?$")


class PollingAtDebug(logging.Filter):
    """uvicorn's access lines for polling (GET /jobs/{id}, /jobs/{id}/events) at DEBUG: a
    page polls every second, which would otherwise fill the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) >= 3 and args[1] == "GET"):
            return True
        if not _POLLING.match(str(args[2])):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def port_problem(host: str, port: int, setting: str) -> str | None:
    """Why nothing can listen on host:port (taken, not allowed), naming the setting to change;
    None when it is free."""
    if port == 0:
        return None
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc})"
        return f"Port {port} on {host} {reason}: set {setting} to a free port."
    return None


def serve(settings: ApiSettings, *, root_path: str = "") -> None:
    """Build the app for `settings` and serve it until SIGINT/SIGTERM, then return.

    uvicorn re-raises the signal that stopped it once it has shut down; a handler that
    only logs it lets the caller clean up and exit normally.
    """
    app = create_app(settings)
    logger.info("API on http://%s:%d (docs at /docs)", settings.host, settings.port)
    internal = None
    if settings.internal_metrics_port:
        internal, _ = start_http_server(
            settings.internal_metrics_port,
            addr=settings.host,
            registry=app.state.services.registry,
        )
        logger.info(
            "metrics without a key on http://%s:%d/metrics",
            settings.host,
            settings.internal_metrics_port,
        )

    def stopped(signum: int, _frame: FrameType | None) -> None:
        logger.info("API stopped by %s", signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    access = logging.getLogger("uvicorn.access")
    quiet = PollingAtDebug()
    access.addFilter(quiet)
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            root_path=root_path,
            log_level=log_level().lower(),
            log_config=None if json_logs() else uvicorn.config.LOGGING_CONFIG,
            proxy_headers=True,
            timeout_graceful_shutdown=30,
        )
    finally:
        if internal is not None:
            internal.shutdown()
        access.removeFilter(quiet)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mcnet api`."""
    args = _parser().parse_args(argv)
    configure_logging()
    settings = settings_from_env(ApiSettings)
    update = {"host": args.host, "port": args.port}
    settings = settings.model_copy(update={k: v for k, v in update.items() if v is not None})
    if not settings.redis_url:
        logger.error("REDIS_URL is not set (or run `mcnet serve`, which starts Redis)")
        return 2
    problem = port_problem(settings.host, settings.port, "MCNET_PORT (or --port)") or (
        port_problem(settings.host, settings.internal_metrics_port, "MCNET_INTERNAL_METRICS_PORT")
    )
    if problem is not None:
        logger.error("%s", problem)
        return 2
    try:
        serve(settings, root_path=args.root_path)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    return 0
