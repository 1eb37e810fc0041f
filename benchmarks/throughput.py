"""Throughput of the serving path against the literal reference path, in one run.

Measures on one device:
- `reference per-frame fp32`: the literal networks (`model.reference`: the published
  architecture as written, no fused blocks) run the way the official demo loop runs them
  (batch 1, the source re-encoded every frame, each result copied to the host): the baseline;
- the batched animator in the configurations asked for (fp32 exact, bf16 / fp16 with fp32
  islands, torch.compile, NCHW instead of the default channels_last), each against the
  baseline's frames: frames/s, ms/frame, peak device memory, PSNR and max abs difference;
- optionally (--file-to-file) the whole task on a generated 1080p driving video with sound:
  decode, crop, animate, paste back, encode.

Prints a table and writes JSON. Ratios are against the baseline measured in the same run.

    python benchmarks/throughput.py --device cuda --frames 128 --json out.json
    python benchmarks/throughput.py --device cpu --frames 8   # this machine
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.quality import psnr  # noqa: E402
from model.animator import Animator  # noqa: E402
from model.checkpoint import demo_networks, load_networks  # noqa: E402
from model.config import MCNetConfig  # noqa: E402
from model.networks import MCNet  # noqa: E402
from model.precision import cpu_flags, set_process_precision, unsupported_reason  # noqa: E402
from model.reference import animate_frame_by_frame  # noqa: E402
from tests.conformance_fixture import fixture_networks, fixture_path, load_fixture  # noqa: E402


@dataclass
class Row:
    name: str
    frames: int
    seconds: float
    frames_per_s: float
    ms_per_frame: float
    peak_memory_mib: float
    psnr_db: float | None
    max_abs_diff: float | None
    speedup: float | None = None


def synthetic_frames(count: int, seed: int, size: int = 256) -> np.ndarray:
    """Smooth moving blobs, `N x size x size x 3` uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        cx, cy = 0.5 + 0.15 * math.sin(i / 5), 0.5 + 0.1 * math.cos(i / 7)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.03)
        image = blob[..., None] * np.array([0.9, 0.7, 0.6]) + 0.1 * rng.uniform(
            0, 1, (size, size, 3)
        )
        out[i] = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    name: str,
    device: torch.device,
    run: Callable[[], Iterator[np.ndarray]],
    reference: np.ndarray | None,
) -> tuple[Row, np.ndarray]:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    frames = np.concatenate([np.asarray(f).reshape(-1, 256, 256, 3) for f in run()])
    sync(device)
    seconds = time.perf_counter() - start
    n = len(frames)
    quality = (None, None)
    if reference is not None:
        quality = (psnr(frames, reference), float(np.abs(frames - reference).max()))
    row = Row(name, n, seconds, n / seconds, 1000 * seconds / n, peak_memory_mib(device), *quality)
    return row, frames


def animator_for(
    spec: str, networks: MCNet, device: torch.device, batch_size: int | None
) -> Animator:
    """An animator of a configuration `precision[+compile][+nchw]`."""
    precision, *flags = spec.split("+")
    return Animator(
        networks,
        device=device,
        precision=precision,  # type: ignore[arg-type]
        batch_size=batch_size,
        compile="compile" in flags,
        channels_last=False if "nchw" in flags else None,
    )


def median_row(rows: list[Row]) -> Row:
    """The run with the median frames/s, with the highest peak memory of all runs."""
    ordered = sorted(rows, key=lambda r: r.frames_per_s)
    row = ordered[(len(ordered) - 1) // 2]
    row.peak_memory_mib = max(r.peak_memory_mib for r in rows)
    return row


def model_rows(
    args: argparse.Namespace, networks: MCNet, device: torch.device
) -> tuple[list[Row], dict[str, Animator]]:
    """The baseline and each animator configuration, run in turn `args.repeats` times (so
    a slow spell of a shared machine hits them alike); each row is its median run. Also
    returns the animators by configuration, compiled and warm."""
    source = synthetic_frames(1, seed=1)[0]
    driving = synthetic_frames(args.frames, seed=2)
    networks = networks.to(device)
    set_process_precision(device, "fp32")  # the baseline is exact fp32 (TF32 off on CUDA)
    warm = driving[: min(2, len(driving))]
    list(animate_frame_by_frame(networks, source, warm, device=device))

    def baseline() -> Iterator[np.ndarray]:
        return animate_frame_by_frame(networks, source, driving, device=device)

    runners: list[tuple[str, Callable[[], Iterator[np.ndarray]]]] = [
        ("reference per-frame fp32 (official loop)", baseline)
    ]
    animators: dict[str, Animator] = {}
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    for spec in args.configs:
        reason = unsupported_reason(spec.split("+")[0], device.type, cpu_flags(), cuda_bf16)
        if reason is not None:
            sys.stderr.write(f"skipped {spec}: {reason}\n")
            continue
        animator = animators[spec] = animator_for(spec, networks, device, args.batch_size)

        def run(animator: Animator = animator) -> Iterator[np.ndarray]:
            for batch in animator.animate_batches(source, driving):
                yield batch.permute(0, 2, 3, 1).cpu().numpy()

        for _ in range(args.warmup):  # compile and autotune outside the measured run
            list(animator.animate_batches(source, warm))
        runners.append((f"animator {spec} (batch {animator.batch_size})", run))

    runs: dict[str, list[Row]] = {name: [] for name, _ in runners}
    reference: np.ndarray | None = None
    for _ in range(args.repeats):
        for index, (name, runner) in enumerate(runners):
            row, frames = measure(name, device, runner, None if index == 0 else reference)
            if index == 0 and reference is None:  # the baseline's frames, the first time
                reference = frames
            runs[name].append(row)
    rows = [median_row(runs[name]) for name, _ in runners]
    for row in rows:
        row.speedup = row.frames_per_s / rows[0].frames_per_s
    return rows, animators


def file_to_file_rows(
    args: argparse.Namespace, spec: str, animator: Animator, device: torch.device
) -> list[Row]:
    """The whole task on a generated 1080p driving video with sound, once per x264 preset,
    with the animator of configuration `spec`."""
    from core.encoding import EncodeSettings
    from core.options import JobOptions
    from tests.media_factory import Audio, face_image, write_image, write_video
    from worker.media.settings import MediaSettings
    from worker.task import run_animation

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source, driving = folder / "source.png", folder / "driving.mp4"
        write_image(source, face_image(768, 1024, 384, 420, 220))
        write_video(
            driving,
            lambda i: face_image(
                1920, 1080, 960 + 8 * math.sin(i / 5), 480, 300, mouth_open=0.5 + 0.5 * math.sin(i)
            ),
            count=args.file_frames,
            fps=25,
            audio=Audio(),
        )
        options = JobOptions(crop="none") if args.no_crop else JobOptions()
        rows = []
        for preset in args.presets:
            settings = MediaSettings(encode=EncodeSettings(encode_preset=preset))

            def task(name: str, settings: MediaSettings = settings) -> None:
                run_animation(source, driving, folder / name, options, animator, settings=settings)
                sync(device)

            task("warm.mp4")
            start = time.perf_counter()
            task("out.mp4")
            seconds = time.perf_counter() - start
            n = args.file_frames
            rows.append(
                Row(
                    f"file to file 1080p ({spec}, x264 {preset})",
                    n,
                    seconds,
                    n / seconds,
                    1000 * seconds / n,
                    peak_memory_mib(device),
                    None,
                    None,
                )
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=None,
        help="animator configurations: precision[+compile][+nchw]; default: "
        "fp32, fp16, fp16+compile on CUDA; fp32 and bf16 on CPU (bf16 where "
        "the CPU has it)",
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each configuration, in turn; median kept"
    )
    parser.add_argument("--checkpoint", default=None, help="default: the fixture's weights")
    parser.add_argument("--config", choices=["vox256", "tiny"], default="vox256")
    parser.add_argument("--file-to-file", action="store_true")
    parser.add_argument("--file-frames", type=int, default=256)
    parser.add_argument("--no-crop", action="store_true", help="file to file with crop=none")
    parser.add_argument(
        "--presets", nargs="+", default=["medium"], help="x264 presets of the file-to-file runs"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.configs is None:
        args.configs = (
            ["fp32", "fp16", "fp16+compile"]
            if device.type == "cuda"
            else ["fp32", "bf16"]  # torch.compile on 2 CPU cores takes over ten minutes
        )
    config = MCNetConfig.named(args.config)
    if args.checkpoint:
        networks, weights = load_networks(args.checkpoint, config), args.checkpoint
    elif args.config == "vox256" and fixture_path().is_file():
        networks = fixture_networks(load_fixture())
        weights = "conformance fixture (fill.py)"
    else:
        networks, weights = demo_networks(config), "demo (untrained)"
    rows, animators = model_rows(args, networks, device)
    if args.file_to_file:
        # the last configuration measured (the fastest, listed last), already warm
        if animators:
            spec, animator = list(animators.items())[-1]
        else:
            spec, animator = "fp32", animator_for("fp32", networks, device, args.batch_size)
        rows += file_to_file_rows(args, spec, animator, device)
    environment = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "weights": weights,
        "config": args.config,
    }
    columns = ("frames/s", "ms/frame", "peak MiB", "PSNR dB", "max abs", "x base")
    header = f"{'configuration':<52} " + " ".join(f"{c:>9}" for c in columns)
    lines = [json.dumps(environment), header]
    for r in rows:
        psnr_text = "-" if r.psnr_db is None else f"{r.psnr_db:.1f}"
        diff_text = "-" if r.max_abs_diff is None else f"{r.max_abs_diff:.1e}"
        speed = "-" if r.speedup is None else f"{r.speedup:.2f}"
        lines.append(
            f"{r.name:<52} {r.frames_per_s:>9.2f} {r.ms_per_frame:>9.1f} "
            f"{r.peak_memory_mib:>9.0f} {psnr_text:>9} {diff_text:>9} {speed:>9}"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"environment": environment, "rows": [asdict(r) for r in rows]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
