"""Logging of every `mcnet` command, set up in one place, and the fields that follow a job.

`MCNET_LOG_FORMAT=text` (default) writes lines for people; `json` writes one JSON object
per line: `time`, `level`, `logger`, `message` and, where known, `job_id`, `key` (the API
key's name), `stage` and `request_id` (the `X-Request-ID` of the request that made the
job), plus `exc` with the traceback of an error.

The fields come from the context of the code that logs: `log_fields(...)` opens a scope
(a request in the API, a job's run in the worker) and `set_log_field` fills it in later
(the key, once known; the stage, as it changes). A scope is one dict shared by the
threads its code hands work to, so a field set in one of them shows in all.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from core.settings import LogSettings, settings_from_env

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = ("job_id", "key", "stage", "request_id")

_FIELDS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "mcnet_log_fields", default=None
)


@contextmanager
def log_fields(**fields: str | None) -> Iterator[dict[str, str]]:
    """A scope of log fields (those of the enclosing scope, and these) while the block runs."""
    scope = dict(_FIELDS.get() or {})
    scope.update({name: value for name, value in fields.items() if value})
    token = _FIELDS.set(scope)
    try:
        yield scope
    finally:
        _FIELDS.reset(token)


def set_log_field(name: str, value: str | None) -> None:
    """Set (or, with None, remove) a field of the current scope; nothing outside a scope."""
    scope = _FIELDS.get()
    if scope is None:
        return
    if value:
        scope[name] = value
    else:
        scope.pop(name, None)


def log_field(name: str) -> str | None:
    """A field of the current scope."""
    return (_FIELDS.get() or {}).get(name)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_FIELDS.get() or {})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_settings() -> LogSettings:
    """MCNET_LOG_LEVEL and MCNET_LOG_FORMAT (a wrong value exits with one line)."""
    return settings_from_env(LogSettings)


def log_level() -> str:
    """The level MCNET_LOG_LEVEL names, INFO when unset (or empty)."""
    return log_settings().log_level


def json_logs() -> bool:
    """Whether MCNET_LOG_FORMAT asks for JSON lines."""
    return log_settings().log_format == "json"


def configure_logging(level: str | None = None) -> None:
    """Log to stderr at `level` (default: MCNET_LOG_LEVEL), as MCNET_LOG_FORMAT says."""
    settings = log_settings()
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level or settings.log_level, handlers=[handler])
