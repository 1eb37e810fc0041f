"""`mcnet animate SOURCE DRIVING -o OUT.mp4`: animate a photo offline, with a progress bar."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from core.encoding import EncodeSettings, X264Preset
from core.errors import MCNetError, NoFaceError
from core.logs import configure_logging
from core.options import JobOptions
from core.protocol import DEMO_MODEL, Stage
from core.settings import ModelSettings, QueueSettings

logger = logging.getLogger("mcnet.animate")

CHECKPOINT_HELP = """\
No checkpoint given. MCNet's trained weights are not bundled: download the official
vox-256 checkpoint of the MCNet release (github.com/harlanhong/ICCV2023-MCNET, the
Google Drive links in its README), convert it once with

    mcnet convert PATH/TO/checkpoint.pth.tar mcnet-vox256.safetensors

and pass it with --checkpoint mcnet-vox256.safetensors (or set MCNET_CHECKPOINT).
To try the pipeline without a checkpoint, add --demo-weights (untrained weights: the
face will not move like the driving video)."""


def _best_frame(value: str) -> str | int:
    if value in ("none", "auto"):
        return value
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError("must be none, auto or a frame index (0, 1, ...)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mcnet animate` (every JobOptions field is an option)."""
    parser = argparse.ArgumentParser(
        prog="mcnet animate",
        description="Animate the face of a photo with a driving talking-head video (MCNet).",
    )
    parser.add_argument("source", type=Path, help="photo with a face (JPEG, PNG or WebP)")
    parser.add_argument("driving", type=Path, help="driving video (MP4, MOV, WebM, MKV, AVI, GIF)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="result MP4 to write")
    fields = JobOptions.model_fields
    job = parser.add_argument_group("animation options (as the HTTP API's form fields)")
    job.add_argument(
        "--motion", choices=["relative", "absolute"], help=fields["motion"].description
    )
    job.add_argument(
        "--adapt-scale",
        action=argparse.BooleanOptionalAction,
        help=fields["adapt_scale"].description,
    )
    job.add_argument(
        "--best-frame",
        type=_best_frame,
        metavar="none|auto|N",
        help=fields["best_frame"].description,
    )
    job.add_argument("--crop", choices=["auto", "none"], help=fields["crop"].description)
    job.add_argument(
        "--paste-back", action=argparse.BooleanOptionalAction, help=fields["paste_back"].description
    )
    job.add_argument(
        "--layout", choices=["result", "side_by_side"], help=fields["layout"].description
    )
    job.add_argument(
        "--audio", action=argparse.BooleanOptionalAction, help=fields["audio"].description
    )
    job.add_argument("--seed", type=int, help=fields["seed"].description)
    model = parser.add_argument_group("model (default: the MCNET_* environment)")
    model.add_argument(
        "--checkpoint",
        type=Path,
        help="converted .safetensors or official .pth.tar checkpoint (MCNET_CHECKPOINT)",
    )
    model.add_argument(
        "--demo-weights",
        action="store_true",
        default=None,
        help="run with deterministic untrained weights (no checkpoint; output is not a trained "
        "model's)",
    )
    model.add_argument("--device", help="cuda, cuda:N, cpu or auto (default)")
    model.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        help="fp32: exact (default); bf16: CPUs with AVX-512 BF16 or AMX, CUDA GPUs that "
        "support it; fp16: CUDA",
    )
    model.add_argument("--batch-size", type=int, help="frames per batch (default: from memory)")
    model.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the generator (worth it on a GPU)",
    )
    defaults = EncodeSettings()
    out = parser.add_argument_group("output")
    out.add_argument(
        "--crf",
        type=int,
        help=f"H.264 quality, 0-51, lower is better (default: {defaults.encode_crf})",
    )
    out.add_argument(
        "--preset",
        choices=get_args(X264Preset),
        help=f"x264 speed/size trade-off (default: {defaults.encode_preset})",
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return parser


def _options(args: argparse.Namespace) -> JobOptions:
    return JobOptions(**_given(args, list(JobOptions.model_fields)))


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _model_settings(args: argparse.Namespace) -> ModelSettings:
    """The environment's model settings with the options given here over them."""
    names = ("checkpoint", "demo_weights", "device", "precision", "batch_size", "compile")
    return ModelSettings.model_validate({**ModelSettings().model_dump(), **_given(args, names)})


def _encode_settings(args: argparse.Namespace) -> EncodeSettings:
    given = _given(args, ("crf", "preset"))
    return EncodeSettings(**{f"encode_{name}": value for name, value in given.items()})


class _Bar:
    """A tqdm progress bar on stderr that follows the task's stages."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.stage = ""

    def __call__(self, progress: Any) -> None:
        if not self.enabled or progress.stage == Stage.DONE:  # the last line says it is done
            return
        from tqdm import tqdm

        if progress.stage != self.stage:
            self.close()
            self.stage = progress.stage
            total = progress.frames_total or None
            self.bar = tqdm(total=total, desc=progress.stage, unit="frame", file=sys.stderr)
        if self.bar is not None:
            if progress.frames_total and self.bar.total != progress.frames_total:
                self.bar.total = progress.frames_total
            self.bar.update(progress.frames_done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mcnet animate`; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging("INFO" if args.verbose else "WARNING")
    try:
        options = _options(args)
        model = _model_settings(args)
        encode = _encode_settings(args)
    except ValidationError as exc:
        message = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()
        )
        parser.error(f"invalid options: {message}")
    if model.checkpoint is None and not model.demo_weights:
        sys.stderr.write(CHECKPOINT_HELP + "\n")
        return 2
    for path in (args.source, args.driving):
        if not path.is_file():
            logger.error("%s: no such file", path)
            return 1
    problem = output_problem(args.output)
    if problem is not None:
        logger.error("%s", problem)
        return 1

    from worker.media.settings import MediaSettings
    from worker.model_loading import describe_model, load_animator
    from worker.task import run_animation

    bar = _Bar(not args.no_progress)
    try:
        animator = load_animator(model)
        label = describe_model(model)
        result = run_animation(
            args.source,
            args.driving,
            args.output,
            options,
            animator,
            progress=bar,
            settings=MediaSettings(limits=QueueSettings().media_limits(), encode=encode),
            model=label,
        )
    except NoFaceError as exc:  # in this command's words: its flag, not the API's field
        bar.close()
        logger.error("%s", NoFaceError(exc.which, skip="pass --crop none"))
        return 1
    except (MCNetError, ValueError) as exc:
        bar.close()
        logger.error("%s", exc)
        return 1
    bar.close()
    logger.info(
        "%d frames, %dx%d at %.3f fps%s in %.1f s",
        result.frames,
        result.width,
        result.height,
        result.fps,
        " with sound" if result.has_audio else "",
        result.seconds,
    )
    sys.stdout.write(summary_line(result, label) + "\n")
    return 0


def output_problem(path: Path) -> str | None:
    """Why the result cannot be written at `path` (checked before any work), or None."""
    if path.suffix.lower() != ".mp4":
        return f"{path}: the result is an MP4; give an output path ending in .mp4"
    folder = path.parent
    if not folder.is_dir():
        return f"{path}: the folder {folder} does not exist; create it or choose another path"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{path}: the folder {folder} is not writable; choose another path"
    if path.is_dir():
        return f"{path} is a folder; give a file name ending in .mp4"
    return None


def summary_line(result: Any, model: str) -> str:
    """The command's last line: where the result is, how long and how big it is, and
    whether untrained demo weights made it."""
    seconds = result.frames / result.fps if result.fps else 0.0
    size = result.output_path.stat().st_size
    demo = " (demo weights: untrained, the face does not follow the video)"
    return f"wrote {result.output_path}: {seconds:.1f} s of video, {_human_size(size)}" + (
        demo if model == DEMO_MODEL else ""
    )


def _human_size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    if size < 1000**2:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1000**2:.1f} MB"


if __name__ == "__main__":
    sys.exit(main())
