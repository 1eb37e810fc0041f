"""Speed and quality of each precision against fp32, on the conformance fixture and on real
frames, in one run.

For each input set (the conformance fixture's source and 4 driving frames; a talking-face video
this script draws, encodes with H.264 and decodes again, as an upload would arrive), each
precision runs `--repeats` times, in turn with fp32, so a slow spell of a shared machine hits
them alike. Reported per precision: frames/s (median run), the speed-up over fp32 (median of
the per-turn ratios), PSNR and max abs difference of the frames against fp32's.

`--islands` also measures each fp32 island of `model.mixed_precision` (layer by layer): the
quality when that one module runs in 16 bits instead, and the module's own time per frame in
fp32 and in 16 bits, so each island's cost and gain is measured, not assumed.

    python benchmarks/precision.py --device cpu --frames 8 --repeats 3 --islands --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.quality import psnr  # noqa: E402
from model.animator import Animator  # noqa: E402
from model.checkpoint import demo_networks, load_networks  # noqa: E402
from model.config import MCNetConfig  # noqa: E402
from model.mixed_precision import FP32_ISLANDS  # noqa: E402
from model.networks import MCNet  # noqa: E402
from model.precision import (  # noqa: E402
    PRECISIONS,
    Precision,
    PrecisionError,
    check_precision,
    set_process_precision,
)
from tests.conformance_fixture import fixture_networks, fixture_path, load_fixture  # noqa: E402


@dataclass
class Row:
    inputs: str
    precision: str
    frames: int
    frames_per_s: float
    speedup: float | None
    psnr_db: float | None
    max_abs_diff: float | None


@dataclass
class IslandRow:
    island: str
    inputs: str
    psnr_db_in_16_bits: float
    psnr_db_default: float
    ms_per_frame_fp32: float
    ms_per_frame_16_bits: float


def video_frames(count: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A source photo and `count` driving frames of a talking face (the head moves, turns
    in size and opens its mouth over a textured background), through H.264 and back."""
    from tests.media_factory import decode_all, face_image, write_video

    rng = np.random.default_rng(0)
    texture = rng.integers(-14, 15, (256, 256, 3))

    def frame(i: int, background: tuple[int, int, int], x: float, size: float) -> np.ndarray:
        image = face_image(
            256,
            256,
            x + 10 * math.sin(i / 3),
            124 + 4 * math.cos(i / 4),
            size * (1 + 0.04 * math.sin(i / 5)),
            mouth_open=0.5 + 0.5 * math.sin(i * 0.9),
            background=background,
        )
        return np.clip(image.astype(int) + texture, 0, 255).astype(np.uint8)

    path = write_video(
        folder / "driving.mp4", lambda i: frame(i, (190, 185, 170), 132, 92), count=count
    )
    driving = np.stack(decode_all(path))
    return frame(0, (90, 120, 160), 122, 84), driving


def run(animator: Animator, source: np.ndarray, driving: np.ndarray) -> tuple[np.ndarray, float]:
    """The frames (`N x H x W x 3` float32) and seconds per frame."""
    start = time.perf_counter()
    batches = [
        b.permute(0, 2, 3, 1).cpu().numpy() for b in animator.animate_batches(source, driving)
    ]
    if animator.device.type == "cuda":
        torch.cuda.synchronize(animator.device)
    return np.concatenate(batches), (time.perf_counter() - start) / len(driving)


def rows_for(
    inputs: str,
    source: np.ndarray,
    driving: np.ndarray,
    animators: dict[Precision, Animator],
    repeats: int,
) -> list[Row]:
    seconds: dict[Precision, list[float]] = {p: [] for p in animators}
    frames: dict[Precision, np.ndarray] = {}
    for animator in animators.values():  # warm up (first-call allocations)
        run(animator, source, driving[:1])
    for _ in range(repeats):
        for precision, animator in animators.items():
            frames[precision], per_frame = run(animator, source, driving)
            seconds[precision].append(per_frame)
    rows = []
    reference = frames["fp32"]
    for precision in animators:
        ratios = [a / b for a, b in zip(seconds["fp32"], seconds[precision], strict=True)]
        exact = precision == "fp32"
        rows.append(
            Row(
                inputs,
                precision,
                len(driving),
                1 / statistics.median(seconds[precision]),
                statistics.median(ratios),
                None if exact else psnr(frames[precision], reference),
                None if exact else float(np.abs(frames[precision] - reference).max()),
            )
        )
    return rows


def module_timer(module: nn.Module) -> Callable[[], float]:
    """Hooks that add up the time spent in `module`; returns a function giving the total."""
    spent = [0.0, 0.0]

    def before(_module: nn.Module, _args: object) -> None:
        spent[1] = time.perf_counter()

    def after(_module: nn.Module, _args: object, _out: object) -> None:
        spent[0] += time.perf_counter() - spent[1]

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)
    return lambda: spent[0]


def island_rows(
    inputs: str,
    source: np.ndarray,
    driving: np.ndarray,
    networks: MCNet,
    precision: Precision,
    device: torch.device,
    reference: np.ndarray,
) -> list[IslandRow]:
    """Each island turned back to 16 bits alone: quality against fp32, and the module's own
    time per frame in the default animator (fp32) and in that one (16 bits)."""

    def timed_run(islands: tuple[str, ...], timed: tuple[str, ...]) -> tuple[float, list[float]]:
        animator = Animator(networks, device, precision, batch_size=1, fp32_islands=islands)
        run(animator, source, driving[:1])
        totals = [module_timer(animator.networks.get_submodule(path)) for path in timed]
        frames, _ = run(animator, source, driving)
        return psnr(frames, reference), [1000 * total() / len(driving) for total in totals]

    default_db, fp32_ms = timed_run(FP32_ISLANDS, FP32_ISLANDS)
    rows = []
    for island, ms in zip(FP32_ISLANDS, fp32_ms, strict=True):
        others = tuple(i for i in FP32_ISLANDS if i != island)
        quality, (low_ms,) = timed_run(others, (island,))
        rows.append(IslandRow(island, inputs, quality, default_db, ms, low_ms))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=8, help="driving frames of the video")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=[p for p in PRECISIONS if p != "fp32"],
        default=None,
        help="default: every reduced precision the device supports",
    )
    parser.add_argument("--islands", action="store_true", help="measure each fp32 island")
    parser.add_argument("--checkpoint", default=None, help="default: the fixture's weights")
    parser.add_argument("--config", choices=["vox256", "tiny"], default="vox256")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = MCNetConfig.named(args.config)
    fixture = load_fixture() if args.config == "vox256" and fixture_path().is_file() else None
    if args.checkpoint:
        networks, weights = load_networks(args.checkpoint, config), args.checkpoint
    elif fixture is not None:
        networks, weights = fixture_networks(fixture), "conformance fixture (fill.py)"
    else:
        networks, weights = demo_networks(config), "demo (untrained)"
    precisions: list[Precision] = []
    for precision in args.precisions or [p for p in PRECISIONS if p != "fp32"]:
        try:
            check_precision(precision, device)
        except PrecisionError as err:
            if args.precisions:  # asked for by name: say why not
                sys.stderr.write(f"{err}\n")
                return 1
            continue
        precisions.append(precision)
    set_process_precision(device, "fp32")
    animators: dict[Precision, Animator] = {
        "fp32": Animator(networks, device, "fp32", args.batch_size)
    }
    animators.update({p: Animator(networks, device, p, args.batch_size) for p in precisions})
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"video": video_frames(args.frames, Path(tmp))}
    if fixture is not None:
        sets = {"fixture": (fixture["source"], fixture["driving"]), **sets}
    rows: list[Row] = []
    islands: list[IslandRow] = []
    for inputs, (source, driving) in sets.items():
        found = rows_for(inputs, source, driving, animators, args.repeats)
        rows += found
        if args.islands and precisions:
            reference, _ = run(animators["fp32"], source, driving)
            islands += island_rows(
                inputs, source, driving, networks, precisions[0], device, reference
            )
    environment = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "weights": weights,
        "config": args.config,
        "repeats": args.repeats,
    }
    lines = [json.dumps(environment)]
    lines.append(f"{'inputs':<8} {'precision':<9} {'frames':>6} {'frames/s':>9} {'x fp32':>7} "
                 f"{'PSNR dB':>8} {'max abs':>8}")  # fmt: skip
    for r in rows:
        quality = "-" if r.psnr_db is None else f"{r.psnr_db:.1f}"
        diff = "-" if r.max_abs_diff is None else f"{r.max_abs_diff:.1e}"
        speed = "-" if r.speedup is None else f"{r.speedup:.2f}"
        lines.append(
            f"{r.inputs:<8} {r.precision:<9} {r.frames:>6} {r.frames_per_s:>9.3f} {speed:>7} "
            f"{quality:>8} {diff:>8}"
        )
    if islands:
        lines.append(f"{'fp32 island (alone in 16 bits)':<42} {'inputs':<8} {'dB':>6} "
                     f"{'default':>8} {'ms fp32':>8} {'ms 16b':>8}")  # fmt: skip
        for i in islands:
            lines.append(
                f"{i.island:<42} {i.inputs:<8} {i.psnr_db_in_16_bits:>6.2f} "
                f"{i.psnr_db_default:>8.2f} {i.ms_per_frame_fp32:>8.1f} "
                f"{i.ms_per_frame_16_bits:>8.1f}"
            )
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        result = {
            "environment": environment,
            "rows": [asdict(r) for r in rows],
            "islands": [asdict(i) for i in islands],
        }
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
