"""Frames per second across the whole host for a stream of concurrent jobs, file to file.

Every setup animates the same jobs (a photo and a talking-head MP4 with sound, made by
tests/media_factory.py) from files to MP4 files, and is timed from the first job handed
in to the last result on disk:

- `per-frame loop, 1 process`: the baseline, a stand-in for the official demo loop as its
  users run it: one process, one job after another; each reads the whole driving video,
  resizes every frame to 256x256, runs the literal networks frame by frame
  (`model.reference`: batch 1, the source re-encoded every frame) and writes a 256x256 MP4;
  torch's default threads (all cores), fp32;
- `mcnet serve --workers 1` and `--workers auto` (and any other `--layouts`), in fp32 and,
  where the device has it, bf16: the real command with demo weights of the full model, the
  jobs submitted at once through its HTTP API (`core.client`), each with the service's
  defaults (face crop, paste back into the full frame, sound kept), results downloaded.
  Model loading is not timed (the service is ready first).

Prints one table with each setup's frames per second and its ratio to the baseline of the
same run; writes JSON with --json. The machine's load is printed with the figures.

    python benchmarks/host_throughput.py --frames 8 --jobs 4          # a CPU host
    python benchmarks/host_throughput.py --device cuda --frames 64 --jobs 16 --layouts 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.client import Client  # noqa: E402
from core.host_layout import Host  # noqa: E402
from core.protocol import JobState  # noqa: E402
from tests.media_factory import Audio, face_image, write_image, write_video  # noqa: E402


@dataclass
class Row:
    setup: str
    precision: str
    jobs: int
    frames: int
    seconds: float
    frames_per_s: float
    ratio: float | None = None


@dataclass(frozen=True)
class Clip:
    source: Path
    driving: Path
    frames: int


def make_clips(folder: Path, jobs: int, frames: int, width: int, height: int) -> list[Clip]:
    """`jobs` different photo + driving video pairs (a talking face, with sound)."""
    clips = []
    for job in range(jobs):
        source = write_image(
            folder / f"photo{job}.jpg",
            face_image(width, height, width / 2, height * 0.45, height * 0.3),
            fmt="JPEG",
        )
        driving = write_video(
            folder / f"driving{job}.mp4",
            lambda i, job=job: face_image(
                width,
                height,
                width / 2 + 6 * math.sin((i + job) / 4),
                height * 0.45,
                height * 0.3,
                mouth_open=0.5 + 0.5 * math.sin(i + job),
            ),
            count=frames,
            fps=25,
            audio=Audio(),
        )
        clips.append(Clip(source, driving, frames))
    return clips


def per_frame_loop(clips: list[Clip], out: Path, device: str, config: str) -> float:
    """The baseline: one process, one job after another, frame by frame; returns seconds."""
    import torch

    from model.checkpoint import demo_networks
    from model.config import MCNetConfig
    from model.reference import animate_frame_by_frame

    networks = demo_networks(MCNetConfig.named(config)).to(device).eval()

    def read(path: Path) -> list[np.ndarray]:
        with av.open(str(path)) as container:
            return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]

    def square(image: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)

    def job(clip: Clip, target: Path) -> None:
        source = square(np.asarray(av.open(str(clip.source)).decode(video=0).__next__().to_ndarray(
            format="rgb24")))  # fmt: skip
        driving = [square(frame) for frame in read(clip.driving)]
        with av.open(str(target), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width = stream.height = 256
            stream.pix_fmt = "yuv420p"
            for result in animate_frame_by_frame(networks, source, driving, device=device):
                image = (np.clip(result, 0, 1) * 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode())

    job(clips[0], out / "warm.mp4")  # one warm-up, as every setup below has a ready model
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for index, clip in enumerate(clips):
        job(clip, out / f"loop{index}.mp4")
    return time.perf_counter() - start


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def served(
    clips: list[Clip], out: Path, layout: str, precision: str, args: argparse.Namespace
) -> float:
    """`mcnet serve --workers layout`: the jobs submitted at once; returns seconds from the
    first submit to the last result saved (the service started and warmed first)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCNET_", "REDIS_URL"))}
    env.pop("STORAGE_URL", None)
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "MCNET_DEVICE": args.device,
            "MCNET_PRECISION": precision,
            "MCNET_MODEL_CONFIG": args.config,
        }
    )
    command = [
        sys.executable, "-m", "core.cli", "serve", "--demo-weights", "--port", str(port),
        "--data", str(out / f"data-{layout}-{precision}"), "--workers", layout,
        "--worker-metrics-port", "0",
    ]  # fmt: skip
    with open(out / "serve.log", "ab") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        with Client(f"http://127.0.0.1:{port}", timeout=60) as api:
            wanted = _wait_ready(api, process)
            # warm every worker: one job each, at once
            _run_jobs(api, [clips[0]] * wanted, out, "warm")
            start = time.perf_counter()
            _run_jobs(api, clips, out, f"{layout}-{precision}")
            return time.perf_counter() - start
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(api: Client, process: subprocess.Popen[bytes], timeout: float = 900) -> int:
    """Waits until every worker the layout started has registered; returns how many."""
    deadline = time.monotonic() + timeout
    seen, steady = 0, 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("mcnet serve exited; see its log")
        try:
            workers = int(api.http.get("/readyz").json().get("workers", 0))
        except Exception:  # noqa: BLE001  # not listening yet
            workers = 0
        steady = steady + 1 if workers and workers == seen else 0
        seen = workers
        if steady >= 20:  # the same count for 10 s: every worker is up
            return seen
        time.sleep(0.5)
    raise RuntimeError("the workers did not start in time")


def _run_jobs(api: Client, clips: list[Clip], out: Path, tag: str) -> None:
    def one(index: int) -> None:
        clip = clips[index]
        job = api.submit(clip.source, clip.driving, {})
        job = api.wait(job.id, lambda _job: None)
        if job.status is not JobState.FINISHED:
            raise RuntimeError(f"job {job.id} {job.status.value}: {job.error}")
        api.download(job.id, out / f"{tag}-{index}.mp4")

    with ThreadPoolExecutor(len(clips)) as pool:
        list(pool.map(one, range(len(clips))))


def bf16_reason(device: str) -> str | None:
    """Why bf16 cannot run on `device` (None: it can)."""
    import torch

    from model.precision import cpu_flags, unsupported_reason

    cuda_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    return unsupported_reason("bf16", device.split(":")[0], cpu_flags(), cuda_bf16=cuda_bf16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--frames", type=int, default=8, help="frames per driving clip")
    parser.add_argument("--jobs", type=int, default=4, help="jobs handed in at once")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument(
        "--layouts", nargs="+", default=["1", "auto"], help="--workers values of mcnet serve"
    )
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--config", default="vox256", choices=["vox256", "tiny"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = make_clips(folder, args.jobs, args.frames, args.width, args.height)
        frames = args.jobs * args.frames
        rows: list[Row] = []

        def add(setup: str, precision: str, run: Callable[[], float]) -> None:
            seconds = run()
            rows.append(Row(setup, precision, args.jobs, frames, seconds, frames / seconds))
            print(f"  {setup} {precision}: {frames / seconds:.3f} frames/s", flush=True)

        add(
            "per-frame loop, 1 process",
            "fp32",
            lambda: per_frame_loop(clips, folder, args.device, args.config),
        )
        bf16_missing = bf16_reason(args.device)
        for precision in args.precisions:
            if precision == "bf16" and bf16_missing:
                print(f"  bf16 skipped: {bf16_missing}")
                continue
            for layout in args.layouts:
                add(
                    f"mcnet serve --workers {layout}",
                    precision,
                    lambda layout=layout, precision=precision: served(
                        clips, folder, layout, precision, args
                    ),
                )
    for row in rows:
        row.ratio = row.frames_per_s / rows[0].frames_per_s
    host = Host.detect(args.device)
    load = os.getloadavg()
    print(
        f"\nhost: {platform.processor() or platform.machine()}, {host.cores} physical core(s), "
        f"{host.cpus} CPU(s), {host.memory / 2**30:.1f} GiB available, {len(host.gpus)} GPU(s); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{args.jobs} jobs of {args.frames} frames, {args.width}x{args.height}, "
        f"demo weights ({args.config})\n"
    )
    print("| setup | precision | frames/s | x per-frame loop |\n|---|---|---:|---:|")
    for row in rows:
        print(f"| {row.setup} | {row.precision} | {row.frames_per_s:.3f} | {row.ratio:.2f} |")
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
