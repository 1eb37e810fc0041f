"""Hostile uploads: a stalled body is dropped (408) and its spool folder removed, uploads
beyond the cap answer 503 with Retry-After, a burst of large photos answers without 5xx."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import numpy as np

from tests.media_factory import write_image
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, wait_for

BOUNDARY = "stalledboundary"


def _stall(base_url: str, key: str | None = None) -> socket.socket:
    """Open a POST /animate that announces 1 MB and sends only its first part's headers."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        "POST /animate HTTP/1.1\r\n"
        f"Host: {host}\r\n{auth}"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        "Content-Length: 1000000\r\n\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="source"; filename="a.png"\r\n\r\n'
        "partial"
    )
    sock.sendall(head.encode())
    return sock


def _spooled(stack: Stack) -> list[Path]:
    spool = stack.folder / "store" / ".spool"
    return list(spool.iterdir()) if spool.is_dir() else []


def test_stalled_upload_is_dropped_and_its_folder_removed(stack: Stack) -> None:
    with stack.api(upload_idle_timeout=2) as client:
        sock = _stall(str(client.base_url))
        try:
            wait_for(lambda: _spooled(stack), 10, "the upload to be spooled")
            started = time.monotonic()
            sock.settimeout(20)
            answer = sock.recv(4096).decode(errors="replace")
            assert answer.startswith("HTTP/1.1 408"), answer
            assert time.monotonic() - started < 15
        finally:
            sock.close()
        wait_for(lambda: not _spooled(stack), 10, "the spool folder to be removed")


def test_uploads_beyond_the_cap_answer_503(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(max_concurrent_uploads=1, upload_idle_timeout=10) as client:
        sock = _stall(str(client.base_url))
        try:
            wait_for(lambda: _spooled(stack), 10, "the upload to be spooled")
            files = {"source": source.read_bytes(), "driving": driving.read_bytes()}
            answer = client.post("/animate", files=files, data={"crop": "none"})
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"]
        finally:
            sock.close()
        wait_for(lambda: not _spooled(stack), 20, "the spool folder to be removed")
        answer = client.post("/animate", files=files, data={"crop": "none"})
        assert answer.status_code == 202, answer.text


def test_one_client_cannot_hold_every_upload_slot(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    files = {"source": source.read_bytes(), "driving": driving.read_bytes()}
    settings = {
        "api_keys": ["greedy:k-greedy", "other:k-other"],
        "max_concurrent_uploads": 8,
        "max_uploads_per_client": 2,
        "upload_idle_timeout": 20,
    }
    with stack.api(**settings) as client:
        held = [_stall(str(client.base_url), "k-greedy") for _ in range(8)]
        try:
            wait_for(lambda: len(_spooled(stack)) >= 2, 10, "the greedy uploads to be spooled")
            greedy = {"Authorization": "Bearer k-greedy"}
            answer = client.post("/animate", files=files, data={"crop": "none"}, headers=greedy)
            assert answer.status_code == 503 and "share" in answer.json()["detail"], answer.text
            other = {"Authorization": "Bearer k-other"}
            answer = client.post("/animate", files=files, data={"crop": "none"}, headers=other)
            assert answer.status_code == 202, answer.text
        finally:
            for sock in held:
                sock.close()


def test_burst_of_large_photos(stack: Stack, tmp_path: Path) -> None:
    """16 photos of 6000 x 6000 (a few hundred KB each) at once: each answered 202, no 5xx."""
    picture = np.zeros((6000, 6000, 3), np.uint8)
    picture[::50] = 255
    photo = write_image(tmp_path / "large.png", picture, fmt="PNG").read_bytes()
    del picture
    _, driving = make_inputs(tmp_path, frames=2)
    video = driving.read_bytes()

    async def burst(base_url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

            async def one() -> int:
                answer = await client.post(
                    "/animate",
                    files={"source": photo, "driving": video},
                    data={"crop": "none"},
                )
                return answer.status_code

            return list(await asyncio.gather(*(one() for _ in range(16))))

    with stack.api() as client:
        codes = asyncio.run(burst(str(client.base_url)))
    assert codes == [202] * 16, codes
