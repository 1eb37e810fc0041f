"""Motion templates against driving videos, file to file, in one run.

For the same photo and the same generated driving clip (a talking face with sound), measures
the whole job (`worker.task.run_animation`: read, crop, keypoints, animate, paste back,
encode) from the video and from the clip's motion template, and reports frames per second and
their ratio (template / video). A job from the template skips the driving video's decoding,
face detection, cropping and the keypoint detector. Also reports the one-off cost of the
extraction, and the bytes stored per minute: the template (its keypoints and its copied sound)
against the video.

    python benchmarks/templates.py --frames 64           # vox256 (fixture weights if present)
    python benchmarks/templates.py --config tiny --frames 8 --json out.json

Runs alternate (video, template) after one warm-up of each; the median of `--repeats` is kept.
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
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.options import JobOptions  # noqa: E402
from model.animator import Animator  # noqa: E402
from model.checkpoint import demo_networks, load_networks  # noqa: E402
from model.config import MCNetConfig  # noqa: E402
from tests.conformance_fixture import fixture_networks, fixture_path, load_fixture  # noqa: E402
from tests.media_factory import Audio, face_image, write_image, write_video  # noqa: E402
from worker.motion_template import extract_template  # noqa: E402
from worker.task import run_animation  # noqa: E402


@dataclass
class Result:
    frames: int
    fps_of_clip: float
    video_frames_per_s: float
    template_frames_per_s: float
    speedup: float  # template / video
    extract_seconds: float
    video_bytes: int
    template_bytes: int
    template_sound_bytes: int  # stored (compressed) in the template
    video_bytes_per_minute: float
    template_bytes_per_minute: float
    template_motion_bytes_per_minute: float  # without the sound


def make_inputs(folder: Path, frames: int, width: int, height: int) -> tuple[Path, Path]:
    """A photo and a talking-face driving clip (25 fps, AAC sound) of `frames` frames."""
    source, driving = folder / "source.png", folder / "driving.mp4"
    write_image(source, face_image(768, 1024, 384, 420, 220))
    write_video(
        driving,
        lambda i: face_image(
            width,
            height,
            width / 2 + 8 * math.sin(i / 5),
            height * 0.44,
            height * 0.28,
            mouth_open=0.5 + 0.5 * math.sin(i),
        ),
        count=frames,
        fps=25,
        audio=Audio(),
    )
    return source, driving


def measure(args: argparse.Namespace, animator: Animator) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source, driving = make_inputs(folder, args.frames, args.width, args.height)
        template = folder / "motion.mcnet"
        started = time.perf_counter()
        extract_template(driving, template, animator)
        extract_seconds = time.perf_counter() - started
        options = JobOptions(best_frame=args.best_frame)

        def job(from_path: Path) -> float:
            started = time.perf_counter()
            run_animation(source, from_path, folder / "out.mp4", options, animator)
            if animator.device.type == "cuda":
                torch.cuda.synchronize(animator.device)
            return args.frames / (time.perf_counter() - started)

        job(driving), job(template)  # warm-up
        video, from_template = [], []
        for _ in range(args.repeats):
            video.append(job(driving))
            from_template.append(job(template))
        seconds = args.frames / 25
        with zipfile.ZipFile(template) as archive:  # the sound's share of the file, as stored
            sound = sum(i.compress_size for i in archive.infolist() if i.filename == "audio.npy")
        template_bytes, video_bytes = template.stat().st_size, driving.stat().st_size
        return Result(
            frames=args.frames,
            fps_of_clip=25.0,
            video_frames_per_s=statistics.median(video),
            template_frames_per_s=statistics.median(from_template),
            speedup=statistics.median(from_template) / statistics.median(video),
            extract_seconds=extract_seconds,
            video_bytes=video_bytes,
            template_bytes=template_bytes,
            template_sound_bytes=sound,
            video_bytes_per_minute=video_bytes * 60 / seconds,
            template_bytes_per_minute=template_bytes * 60 / seconds,
            template_motion_bytes_per_minute=(template_bytes - sound) * 60 / seconds,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", choices=["vox256", "tiny"], default="vox256")
    parser.add_argument("--checkpoint", default=None, help="default: the fixture's weights")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--width", type=int, default=1280, help="the driving clip's size")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--best-frame", default="none", help="the jobs' best_frame option")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    config = MCNetConfig.named(args.config)
    if args.checkpoint:
        networks, weights = load_networks(args.checkpoint, config), args.checkpoint
    elif args.config == "vox256" and fixture_path().is_file():
        networks, weights = fixture_networks(load_fixture()), "conformance fixture"
    else:
        networks, weights = demo_networks(config), "demo (untrained)"
    animator = Animator(networks, device=args.device, batch_size=args.batch_size)
    result = measure(args, animator)
    environment = {
        "device": str(animator.device),
        "cpu_threads": torch.get_num_threads(),
        "config": args.config,
        "weights": weights,
        "batch_size": animator.batch_size,
        "driving": f"{args.width}x{args.height}, 25 fps, AAC, {args.frames} frames",
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    print(json.dumps(environment))
    print(f"{'path':<28}{'frames/s':>10}")
    print(f"{'from the video':<28}{result.video_frames_per_s:>10.3f}")
    print(f"{'from the template':<28}{result.template_frames_per_s:>10.3f}")
    print(f"ratio template/video: {result.speedup:.3f}")
    print(f"extraction (once): {result.extract_seconds:.2f} s")
    motion = result.template_motion_bytes_per_minute
    sound = result.template_bytes_per_minute - motion
    print(
        f"bytes per minute: video {result.video_bytes_per_minute:,.0f}, template "
        f"{result.template_bytes_per_minute:,.0f} (motion {motion:,.0f} + sound {sound:,.0f})"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"environment": environment, "result": asdict(result)}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
