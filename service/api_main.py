"""`mcnet api`: serve the HTTP API with uvicorn (settings from the environment)."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

import uvicorn

from core.logs import configure_logging, log_level
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


def serve(settings: ApiSettings, *, root_path: str = "") -> None:
    """Build the app for `settings` and serve it until SIGINT/SIGTERM, then return.

    uvicorn re-raises the signal that stopped it once it has shut down; a handler that
    only logs it lets the caller clean up and exit normally.
    """
    app = create_app(settings)
    logger.info("API on http://%s:%d (docs at /docs)", settings.host, settings.port)

    def stopped(signum: int, _frame: FrameType | None) -> None:
        logger.info("API stopped by %s", signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            root_path=root_path,
            log_level=log_level().lower(),
            proxy_headers=True,
            timeout_graceful_shutdown=30,
        )
    finally:
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
    try:
        serve(settings, root_path=args.root_path)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    return 0
