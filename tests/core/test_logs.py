"""Logs: JSON lines with the fields of the scope that logged them; text by default."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from core.logs import JsonFormatter, log_field, log_fields, log_settings, set_log_field


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("broken")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("worker.rq_worker", logging.INFO, __file__, 1, message, args, exc_info)


def test_json_line_has_time_level_logger_message_and_the_scope_fields() -> None:
    with log_fields(job_id="j1", request_id="r1"):
        set_log_field("stage", "animating")
        line = json.loads(JsonFormatter().format(_record("job %s: %d frames", "j1", 4)))
    assert line["level"] == "INFO" and line["logger"] == "worker.rq_worker"
    assert line["message"] == "job j1: 4 frames"
    assert line["time"].endswith("+00:00")
    assert (line["job_id"], line["request_id"], line["stage"]) == ("j1", "r1", "animating")
    outside = json.loads(JsonFormatter().format(_record("idle")))
    assert not {"job_id", "request_id", "stage"} & set(outside)


def test_errors_carry_their_traceback_in_exc() -> None:
    line = json.loads(JsonFormatter().format(_record("failed", exc=True)))
    assert "ValueError: broken" in line["exc"]


def test_a_scope_is_shared_with_threads_that_copy_the_context_and_ends_with_its_block() -> None:
    import contextvars

    with log_fields(request_id="r2"):
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(set_log_field, "key", "alice"))
        worker.start()
        worker.join()
        assert log_field("key") == "alice"  # set in the thread, seen here (as with FastAPI)
        with log_fields(job_id="j2"):
            assert (log_field("request_id"), log_field("job_id")) == ("r2", "j2")
        assert log_field("job_id") is None
    assert log_field("request_id") is None


def test_format_and_level_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCNET_LOG_FORMAT", raising=False)
    monkeypatch.setenv("MCNET_LOG_LEVEL", "debug")
    settings = log_settings()
    assert (settings.log_format, settings.log_level) == ("text", "DEBUG")
    monkeypatch.setenv("MCNET_LOG_FORMAT", "yaml")
    with pytest.raises(SystemExit):
        log_settings()
