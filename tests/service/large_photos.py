"""Large photos (a drawn face on 6000 x 6000 pixels) and a short talking video, and the API
as a real process whose resident memory can be read: for the API memory test and benchmark."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from service.local import free_port
from tests.media_factory import face_image, talking_face_frames, write_image, write_video
from tests.service.helpers import ROOT, wait_for

KINDS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def large_photos(folder: Path, side: int = 6000) -> dict[str, bytes]:
    """A `side` x `side` photo with one large face, as JPEG, PNG and WebP (by format)."""
    upright = face_image(side, side, side / 2, side * 0.45, side * 0.3)
    upright[:: max(1, side // 100)] = 255  # lines that keep the files from compressing to nothing
    photos = {}
    for fmt, suffix in KINDS.items():
        path = write_image(folder / f"large.{suffix}", upright, fmt=fmt, quality=80)
        photos[fmt] = path.read_bytes()
    del upright
    return photos


def talking_video(folder: Path) -> bytes:
    """A short driving video with a face in each frame."""
    return write_video(
        folder / "talking.mp4", talking_face_frames(6).__getitem__, count=6
    ).read_bytes()


def resident_mib(pid: int) -> dict[str, float]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def reset_peak(pid: int) -> None:
    """Start the peak (VmHWM) again from the current resident memory (Linux clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class ApiProcess:
    """`python -m core.cli api` on a free loopback port, with the given environment."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("MCNET_", "REDIS_URL"))
        }
        environment.update(env)
        environment["MCNET_PORT"] = str(self.port)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "api"],
            env=environment,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /healthz answers."""

        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the API exited:\n{self.log_path.read_text()}")
            try:
                return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout, "the API to answer", 0.2)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        self._log.close()


async def _burst(url: str, photo: bytes, video: bytes, count: int, crop: str) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def one() -> int:
            answer = await client.post(
                "/animate", files={"source": photo, "driving": video}, data={"crop": crop}
            )
            return answer.status_code

        return list(await asyncio.gather(*(one() for _ in range(count))))


def burst(url: str, photo: bytes, video: bytes, count: int, crop: str = "auto") -> list[int]:
    """POST /animate `count` times at once; the status codes."""
    return asyncio.run(_burst(url, photo, video, count, crop))
