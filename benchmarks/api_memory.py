"""Peak memory of the API under a burst of large-photo uploads, against its idle peak.

Starts a redis-server and `mcnet api` (a real process), sends one small upload (the
baseline: the API warmed up), then N concurrent uploads of a 6300 x 6300 PNG (about
130 KB on disk, 119 MB as pixels), and reads the API's peak resident memory (VmHWM)
after each. Prints the peaks and their ratio (no worker: the jobs stay queued).

    python benchmarks/api_memory.py [--uploads 16] [--side 6300] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.local import EmbeddedRedis, find_redis_server, free_port  # noqa: E402
from tests.media_factory import write_image, write_video  # noqa: E402


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def burst(url: str, photo: bytes, video: bytes, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:

        async def one() -> int:
            answer = await client.post(
                "/animate", files={"source": photo, "driving": video}, data={"crop": "none"}
            )
            return answer.status_code

        return list(await asyncio.gather(*(one() for _ in range(count))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=16)
    parser.add_argument("--side", type=int, default=6300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    binary = find_redis_server()
    if binary is None:
        raise SystemExit("no redis-server")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        redis = EmbeddedRedis(binary, root / "redis")
        redis.start()
        port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": redis.url,
            "STORAGE_URL": (root / "store").as_uri(),
            "MCNET_PORT": str(port),
        }
        api = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "api"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            small = np.full((64, 64, 3), 90, np.uint8)
            big = np.zeros((args.side, args.side, 3), np.uint8)
            big[::50] = 255
            photo_small = write_image(root / "small.png", small, fmt="PNG").read_bytes()
            photo_big = write_image(root / "big.png", big, fmt="PNG").read_bytes()
            del big
            video = write_video(root / "d.mp4", lambda i: small, count=2).read_bytes()
            asyncio.run(burst(url, photo_small, video, 1))
            baseline = peak_rss_mib(api.pid)
            codes = asyncio.run(burst(url, photo_big, video, args.uploads))
            peak = peak_rss_mib(api.pid)
        finally:
            api.terminate()
            api.wait(20)
            redis.stop()
    result = {
        "uploads": args.uploads,
        "photo": f"{args.side}x{args.side} PNG, {len(photo_big) // 1024} KiB",
        "answers": {str(code): codes.count(code) for code in sorted(set(codes))},
        "baseline_peak_mib": round(baseline, 1),
        "burst_peak_mib": round(peak, 1),
        "ratio": round(peak / baseline, 2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
