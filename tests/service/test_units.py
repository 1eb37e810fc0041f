"""Small pieces: Range parsing, streaming upload limits, job state mapping, settings."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from starlette.requests import Request

from core.errors import MCNetError
from service.api_main import PollingAtDebug
from service.ranges import RangeNotSatisfiableError, parse_range
from service.uploads import FormLimits, receive_form


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=5-1", None),  # invalid: ignored, whole file
        ("bytes=0-1,5-6", None),  # several ranges: whole file
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("bytes=", None),
        ("bytes=0-" + "9" * 5000, (0, 99)),  # a huge end: to the end of the file
        ("bytes=-" + "9" * 5000, (0, 99)),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header", ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=" + "9" * 4300 + "-"]
)
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, 100)


def _request(chunks: list[bytes], consumed: list[int]) -> Request:
    messages = iter(chunks)

    async def receive() -> dict[str, object]:
        try:
            chunk = next(messages)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/animate",
        "headers": [(b"content-type", b"multipart/form-data; boundary=XX")],
    }
    return Request(scope, receive)


def test_upload_limit_is_enforced_while_reading(tmp_path: Path) -> None:
    head = b'--XX\r\nContent-Disposition: form-data; name="source"; filename="a"\r\n\r\n'
    chunks = [head] + [b"\0" * 65536] * 1000  # 64 MiB would follow
    consumed: list[int] = []
    limits = FormLimits(files={"source": 100_000, "driving": 100_000}, fields=frozenset())
    with pytest.raises(MCNetError) as caught:
        asyncio.run(receive_form(_request(chunks, consumed), tmp_path, limits))
    assert caught.value.status == 413
    assert sum(consumed) < 300_000, "reading stopped soon after the limit"
    assert (tmp_path / "source").stat().st_size <= 100_000


def test_upload_of_an_unknown_field_stops_at_its_headers(tmp_path: Path) -> None:
    head = b'--XX\r\nContent-Disposition: form-data; name="../../etc/passwd"\r\n\r\n'
    consumed: list[int] = []
    limits = FormLimits(files={"source": 10, "driving": 10}, fields=frozenset({"seed"}))
    with pytest.raises(MCNetError) as caught:
        asyncio.run(receive_form(_request([head, b"x" * 10] * 50, consumed), tmp_path, limits))
    assert caught.value.status == 422
    assert not any(p.name != "source" for p in tmp_path.iterdir() if p.is_file())


def test_polling_access_lines_are_debug_and_the_rest_info(caplog: pytest.LogCaptureFixture) -> None:
    """uvicorn's access lines: GET /jobs/{id} and its events only at DEBUG."""
    access = logging.getLogger("uvicorn.access")
    access.addFilter(PollingAtDebug())
    try:
        for level in (logging.INFO, logging.DEBUG):
            caplog.clear()
            with caplog.at_level(level, logger="uvicorn.access"):
                for method, path in (
                    ("GET", "/jobs/abc"),
                    ("GET", "/jobs/abc/events"),
                    ("POST", "/animate"),
                    ("GET", "/jobs/abc/result"),
                    ("DELETE", "/jobs/abc"),
                ):
                    access.info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", method, path, "1.1", 200)
            shown = [(r.levelname, r.args[2]) for r in caplog.records]  # type: ignore[index]
            polling = [("DEBUG", "/jobs/abc"), ("DEBUG", "/jobs/abc/events")]
            rest = [("INFO", "/animate"), ("INFO", "/jobs/abc/result"), ("INFO", "/jobs/abc")]
            assert shown == (polling + rest if level == logging.DEBUG else rest)
    finally:
        access.filters.clear()
