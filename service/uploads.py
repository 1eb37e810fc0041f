"""Streaming multipart/form-data reception with size limits enforced while reading.

The request body is parsed chunk by chunk as it arrives (python-multipart's streaming
parser): file parts go straight to files in a spool folder, and the request is refused
with 413 as soon as a part passes its limit, without reading the rest. Client file names
and content types are ignored: files are named after their form field only, and their
content is probed later.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from core.errors import (
    BadRequestError,
    InputTooLargeError,
    InvalidRequestError,
    UnsupportedMediaError,
    UploadTooSlowError,
)

logger = logging.getLogger(__name__)

_MULTIPART_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class FormLimits:
    """Which file parts are expected, their byte limits, and which text fields are allowed."""

    files: dict[str, int]
    fields: frozenset[str]
    max_field_bytes: int = 256
    idle_timeout: float = 30.0  # seconds without a byte
    min_rate: int = 0  # bytes per second on average, once idle_timeout seconds have passed

    @property
    def max_body(self) -> int:
        """Largest body a valid request can have."""
        budget = sum(self.files.values()) + len(self.fields) * self.max_field_bytes
        return budget + _MULTIPART_OVERHEAD


@dataclass
class ReceivedForm:
    """The parts of one request: file parts as spooled files, text fields as strings."""

    files: dict[str, Path] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # SHA-256 of each file part
    fields: dict[str, str] = field(default_factory=dict)


class _Receiver:
    """python-multipart callbacks: collects headers, streams parts, checks limits."""

    def __init__(self, folder: Path, limits: FormLimits) -> None:
        self.folder = folder
        self.limits = limits
        self.form = ReceivedForm()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name: str | None = None
        self._file: IO[bytes] | None = None
        self._value = bytearray()
        self._size = 0
        self._hash = hashlib.sha256()

    def callbacks(self) -> dict[str, object]:
        """The callback table python-multipart expects."""
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._value = bytearray()
        self._size = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(
            self._header_value
        )
        self._header_field = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get("content-disposition", b""))
        raw_name = params.get(b"name")
        if disposition != b"form-data" or raw_name is None:
            raise BadRequestError("Every part of the form needs a Content-Disposition name.")
        name = raw_name.decode("utf-8", errors="replace")
        if name in self.form.files or name in self.form.fields:
            raise InvalidRequestError(f"The field {name!r} was sent more than once.")
        if name not in self.limits.files and name not in self.limits.fields:
            allowed = ", ".join(sorted([*self.limits.files, *self.limits.fields]))
            raise InvalidRequestError(f"Unknown form field {name!r}. Allowed fields: {allowed}.")
        self._name = name
        if name in self.limits.files:
            path = self.folder / name
            self._file = open(path, "wb")  # closed in on_part_end or close()
            self._hash = hashlib.sha256()
            self.form.files[name] = path

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        name = self._name
        if name is None:
            return
        self._size += end - start
        if self._file is not None:
            limit = self.limits.files[name]
            if self._size > limit:
                raise InputTooLargeError(
                    f"The {name} file is larger than the limit of {_human(limit)}."
                )
            self._file.write(data[start:end])
            self._hash.update(data[start:end])
        else:
            if self._size > self.limits.max_field_bytes:
                raise InvalidRequestError(f"The value of {name!r} is too long.")
            self._value += data[start:end]

    def on_part_end(self) -> None:
        name = self._name
        if name is None:
            return
        if self._file is not None:
            self._file.close()
            self._file = None
            self.form.sizes[name] = self._size
            self.form.digests[name] = self._hash.hexdigest()
        else:
            try:
                self.form.fields[name] = bytes(self._value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidRequestError(f"The value of {name!r} is not UTF-8 text.") from exc
        self._name = None

    def close(self) -> None:
        """Close a file left open by an interrupted request."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _human(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:.0f} MiB"
    if size >= 2**10:
        return f"{size / 2**10:.0f} KiB"
    return f"{size} bytes"


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaError(
            "Send the files as multipart/form-data (fields source and driving)."
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequestError("The multipart/form-data request has no boundary.")
    return boundary


async def receive_form(request: Request, folder: Path, limits: FormLimits) -> ReceivedForm:
    """Read the body of `request` into `folder`, enforcing `limits` as bytes arrive.

    Raises a domain error (core.errors) with the status and message for the client.
    """
    boundary = _boundary(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body:
        raise InputTooLargeError(
            f"The request is larger than the limit of {_human(limits.max_body)}."
        )
    receiver = _Receiver(folder, limits)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    started = time.monotonic()
    stream = request.stream().__aiter__()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), limits.idle_timeout)
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                raise UploadTooSlowError(
                    f"The upload sent nothing for {limits.idle_timeout:.0f} s and was dropped."
                ) from exc
            received += len(chunk)
            elapsed = time.monotonic() - started
            if elapsed > limits.idle_timeout and received < limits.min_rate * elapsed:
                raise UploadTooSlowError(
                    f"The upload is slower than {_human(limits.min_rate)}/s and was dropped."
                )
            if received > limits.max_body:
                raise InputTooLargeError(
                    f"The request is larger than the limit of {_human(limits.max_body)}."
                )
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequestError(f"The multipart/form-data body is malformed: {exc}") from exc
    except ClientDisconnect as exc:
        raise BadRequestError("The client went away before the upload was complete.") from exc
    finally:
        receiver.close()
    if receiver._name is not None:
        raise BadRequestError("The multipart/form-data body ended in the middle of a part.")
    return receiver.form
