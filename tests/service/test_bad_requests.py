"""Bad requests: each a 4xx with a clear `detail`, never a 5xx, nothing stored or queued."""

from __future__ import annotations

import io
import socket
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from core.errors import NoFaceError
from tests.media_factory import (
    face_image,
    image_bytes,
    talking_face_frames,
    truncate,
    write_garbage,
    write_video,
)
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with stack.api(max_image_bytes=200_000, max_video_bytes=400_000) as client:
        yield client
    left = [p for p in (stack.folder / "store").rglob("*") if p.is_file()]
    assert not left, f"a refused upload was stored: {left}"
    assert stack.jobs().depth() == 0


@pytest.fixture
def media(tmp_path: Path) -> tuple[bytes, bytes]:
    source, driving = make_inputs(tmp_path, frames=3)
    return source.read_bytes(), driving.read_bytes()


def _check(answer: httpx.Response, status: int, *words: str) -> str:
    assert answer.status_code == status, (answer.status_code, answer.text)
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 10
    for word in words:
        assert word.lower() in detail.lower(), detail
    return detail


def _post(
    client: httpx.Client, source: bytes | None, driving: bytes | None, **data: str
) -> httpx.Response:
    files = {}
    if source is not None:
        files["source"] = ("photo.png", source, "image/png")
    if driving is not None:
        files["driving"] = ("clip.mp4", driving, "video/mp4")
    if not files:
        return client.post("/animate", files={"motion": (None, "relative")})
    return client.post("/animate", files=files, data=data)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares `width` x `height`."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def _bomb() -> bytes:
    """A 1-bit 8000x8000 PNG: ~10 kB on disk, 64 million pixels decoded."""
    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_missing_parts(api: httpx.Client, media: tuple[bytes, bytes]) -> None:
    source, driving = media
    _check(_post(api, source, None), 422, "driving")
    _check(_post(api, None, driving), 422, "source")
    _check(_post(api, None, None), 422, "source", "driving")


def test_empty_files(api: httpx.Client, media: tuple[bytes, bytes]) -> None:
    source, driving = media
    _check(_post(api, b"", driving), 415, "photo", "empty")
    _check(_post(api, source, b""), 415, "video", "empty")


def test_wrong_kinds_of_file(api: httpx.Client, media: tuple[bytes, bytes], tmp_path: Path) -> None:
    source, driving = media
    garbage = write_garbage(tmp_path / "garbage.bin").read_bytes()
    _check(_post(api, b"hello, this is text, not a photo", driving), 415, "photo")
    _check(_post(api, garbage, driving), 415, "photo")
    _check(_post(api, driving, driving), 415, "photo is a video")
    _check(_post(api, source, source), 415, "is a photo, not a video")
    _check(_post(api, source, garbage), 415, "video")


def test_huge_dimensions_and_decompression_bomb(
    api: httpx.Client, media: tuple[bytes, bytes]
) -> None:
    _, driving = media
    _check(_post(api, _png_claiming(100_000, 100_000), driving), 413, "pixels")
    _check(_post(api, _png_claiming(2**31 - 1, 1), driving), 413)
    bomb = _bomb()
    assert len(bomb) < 50_000
    _check(_post(api, bomb, driving), 413, "8000x8000")


def test_truncated_video(api: httpx.Client, media: tuple[bytes, bytes], tmp_path: Path) -> None:
    source, driving = media
    whole = tmp_path / "whole.mp4"
    whole.write_bytes(driving)
    for fraction in (0.05, 0.5, 0.9):
        cut = truncate(whole, fraction, tmp_path / f"cut-{fraction}.mp4").read_bytes()
        _check(_post(api, source, cut), 415, "video")


def test_video_of_an_unknown_codec(api: httpx.Client, media: tuple[bytes, bytes]) -> None:
    source, driving = media
    assert b"avc1" in driving
    _check(_post(api, source, driving.replace(b"avc1", b"zzzz")), 415, "video")


def test_files_over_the_size_limit(api: httpx.Client, media: tuple[bytes, bytes]) -> None:
    source, driving = media
    big = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 200_000
    _check(_post(api, buffer.getvalue(), driving), 413, "source", "limit")
    _check(_post(api, source, driving + b"\0" * 400_000), 413, "driving", "limit")
    # A declared length over the limit is refused before any of the body is read.
    with socket.create_connection((api.base_url.host, api.base_url.port), timeout=10) as sock:
        sock.sendall(
            b"POST /animate HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        data = b""
        while not data.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply = data.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "limit" in reply


def test_options(api: httpx.Client, media: tuple[bytes, bytes]) -> None:
    source, driving = media
    _check(_post(api, source, driving, colour="blue"), 422, "unknown", "colour")
    _check(_post(api, source, driving, motion="sideways"), 422, "motion", "sideways")
    _check(_post(api, source, driving, seed="-1"), 422, "seed")
    _check(_post(api, source, driving, seed="many"), 422, "seed")
    _check(_post(api, source, driving, best_frame="middle"), 422, "best_frame")
    _check(_post(api, source, driving, best_frame="3"), 422, "best_frame", "3 frames")
    _check(_post(api, source, driving, paste_back="true", crop="none"), 422, "paste_back")
    _check(_post(api, source, driving, layout="x" * 1000), 422, "layout")
    duplicated = api.post(
        "/animate",
        files=[
            ("source", ("a.png", source)),
            ("driving", ("b.mp4", driving)),
            ("seed", (None, "1")),
            ("seed", (None, "2")),
        ],
    )
    _check(duplicated, 422, "seed", "more than once")


def test_not_multipart(api: httpx.Client) -> None:
    _check(api.post("/animate", json={"source": "x"}), 415, "multipart")
    _check(api.post("/animate", content=b"source=x"), 415, "multipart")
    broken = api.post(
        "/animate",
        content=b"--b\r\nContent-Disposition: form-data; name=source\r\n\r\nabc",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert 400 <= broken.status_code < 500, broken.text
    no_name = api.post(
        "/animate",
        content=b"--b\r\nContent-Type: text/plain\r\n\r\nabc\r\n--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    _check(no_name, 400, "name")


@pytest.mark.parametrize(
    "path",
    [
        "abc",
        "123",
        "not-a-uuid",
        str(uuid.uuid4()).upper(),
        str(uuid.uuid4()).replace("-", ""),
        str(uuid.uuid4()) + "%00",
        "%2e%2e",
        "..%2F..%2Fetc%2Fpasswd",
        "..%5C..%5Cwindows",
        "x" * 5000,
        str(uuid.uuid4()),  # well formed, unknown
    ],
)
def test_malformed_and_unknown_ids(api: httpx.Client, path: str) -> None:
    for method, suffix in (("GET", ""), ("GET", "/result"), ("DELETE", "")):
        answer = api.request(method, f"/jobs/{path}{suffix}")
        assert answer.status_code == 404, (method, path, answer.text)
        assert isinstance(answer.json()["detail"], str)


def test_api_keys(stack: Stack, media: tuple[bytes, bytes]) -> None:
    source, driving = media
    with stack.api(api_keys=["k-one", "k-two"]) as client:
        _check(_post(client, source, driving), 401, "key")
        bad = {"Authorization": "Bearer nope"}
        _check(client.get(f"/jobs/{uuid.uuid4()}", headers=bad), 401, "key")
        good = {"Authorization": "Bearer k-two"}
        assert client.get(f"/jobs/{uuid.uuid4()}", headers=good).status_code == 404
        accepted = client.post(
            "/animate",
            files={"source": source, "driving": driving},
            data={"crop": "none"},
            headers=good,
        )
        assert accepted.status_code == 202, accepted.text
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 401  # operator pages need the key too
        assert client.get("/metrics", headers=good).status_code == 200


def test_openapi_documents_every_option(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    body = schema["paths"]["/animate"]["post"]["requestBody"]["content"]["multipart/form-data"]
    properties = body["schema"]["properties"]
    for name in ("source", "driving", "template", "motion", "adapt_scale", "best_frame", "crop",
                 "paste_back", "layout", "audio", "seed"):  # fmt: skip
        assert name in properties
        assert properties[name].get("description"), name
    # `driving` or `template`, exactly one: the server says so (422), the schema cannot
    assert set(body["schema"]["required"]) == {"source"}
    assert {"202", "413", "415", "422"} <= set(schema["paths"]["/animate"]["post"]["responses"])
    for path, methods in schema["paths"].items():  # Redis or the store down: 503
        for method, operation in methods.items():
            if path not in ("/healthz", "/stages", "/docs", "/redoc", "/"):
                assert "503" in operation["responses"], (method, path)


def test_a_photo_or_video_without_a_face_is_refused_before_queueing(
    api: httpx.Client, media: tuple[bytes, bytes], tmp_path: Path
) -> None:
    noise_photo, noise_video = media
    photo = image_bytes(face_image(160, 160, 80, 80, 40))
    frames = talking_face_frames(4, 128, 128)
    video = write_video(tmp_path / "face.mp4", frames).read_bytes()
    detail = _check(_post(api, noise_photo, video, crop="auto"), 422, "no face", "photo")
    assert detail == str(NoFaceError("source"))  # the worker's own sentence
    detail = _check(_post(api, photo, noise_video, crop="auto"), 422, "no face", "driving video")
    assert detail == str(NoFaceError("driving"))


def test_stages_are_listed_in_order_without_a_key(stack: Stack) -> None:
    with stack.api(api_keys=["k1"]) as client:
        answer = client.get("/stages")
    assert answer.status_code == 200
    assert [item["stage"] for item in answer.json()] == [
        "queued",
        "probing",
        "cropping",
        "animating",
        "encoding",
        "done",
    ]
    assert all(item["label"] for item in answer.json())
