"""Peak and settled memory of the API under bursts of large photos with crop=auto.

Starts a redis-server and `mcnet api` (a real process, no worker: the jobs stay queued),
sends one small upload (the baseline: the API warmed up, its face detector loaded), then
for each of JPEG, PNG and WebP N concurrent uploads of a 6000 x 6000 photo of a face with
crop=auto (the API decodes the photo and looks for the face). After each burst it reads
the API's peak resident memory during the burst (VmHWM, reset before it) and its resident
memory 3 s later (settled). Prints the figures and their ratios to the baseline.

    python benchmarks/api_memory.py [--uploads 16] [--side 6000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.local import EmbeddedRedis, find_redis_server  # noqa: E402
from tests.service.large_photos import (  # noqa: E402
    ApiProcess,
    burst,
    large_photos,
    reset_peak,
    resident_mib,
    talking_video,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--uploads", type=int, default=16)
    parser.add_argument("--side", type=int, default=6000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    binary = find_redis_server()
    if binary is None:
        raise SystemExit("no redis-server")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        photos = large_photos(root, args.side)
        video = talking_video(root)
        (root / "small").mkdir()
        small = large_photos(root / "small", 256)
        redis = EmbeddedRedis(binary, root / "redis")
        redis.start()
        api = ApiProcess(
            {"REDIS_URL": redis.url, "STORAGE_URL": (root / "store").as_uri()}, root / "api.log"
        )
        rows = {}
        try:
            api.wait_ready()
            burst(api.url, small["JPEG"], video, 1)
            baseline = resident_mib(api.process.pid)["VmRSS"]
            for fmt, photo in photos.items():
                reset_peak(api.process.pid)
                started = time.perf_counter()
                codes = burst(api.url, photo, video, args.uploads)
                seconds = time.perf_counter() - started
                peak = resident_mib(api.process.pid)["VmHWM"]
                time.sleep(3)
                settled = resident_mib(api.process.pid)["VmRSS"]
                rows[fmt] = {
                    "file_kib": len(photo) // 1024,
                    "answers": {str(code): codes.count(code) for code in sorted(set(codes))},
                    "seconds": round(seconds, 1),
                    "peak_mib": round(peak, 1),
                    "settled_mib": round(settled, 1),
                    "peak_ratio": round(peak / baseline, 2),
                    "settled_ratio": round(settled / baseline, 2),
                }
        finally:
            api.stop()
            redis.stop()
    result = {
        "uploads": args.uploads,
        "photo": f"{args.side}x{args.side}, crop=auto",
        "baseline_mib": round(baseline, 1),
        "bursts": rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
