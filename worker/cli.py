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

from service.errors import MCNetError
from service.options import JobOptions
from service.settings import X264Preset

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
    model = parser.add_argument_group("model")
    model.add_argument(
        "--checkpoint",
        type=Path,
        default=os.environ.get("MCNET_CHECKPOINT") or None,
        help="converted .safetensors or official .pth.tar checkpoint (default: $MCNET_CHECKPOINT)",
    )
    model.add_argument(
        "--demo-weights",
        action="store_true",
        help="run with deterministic untrained weights (no checkpoint; output is not a trained "
        "model's)",
    )
    model.add_argument("--device", default="auto", help="cuda, cuda:N, cpu or auto (default)")
    model.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="fp32: exact (default); bf16: CPUs with AVX-512 BF16 or AMX, CUDA GPUs that "
        "support it; fp16: CUDA",
    )
    model.add_argument("--batch-size", type=int, help="frames per batch (default: from memory)")
    model.add_argument(
        "--compile", action="store_true", help="torch.compile the generator (worth it on a GPU)"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--crf", type=int, default=18, help="H.264 quality, 0-51, lower is better")
    out.add_argument(
        "--preset",
        choices=get_args(X264Preset),
        default="medium",
        help="x264 speed/size trade-off (default: medium)",
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return parser


def _options(args: argparse.Namespace) -> JobOptions:
    names = ("motion", "adapt_scale", "best_frame", "crop", "paste_back", "layout", "audio", "seed")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return JobOptions(**given)


def _load_animator(args: argparse.Namespace) -> Any:
    """Build the Animator: from --checkpoint, or demo weights with --demo-weights."""
    from model.animator import Animator
    from model.checkpoint import demo_networks, load_networks

    if args.checkpoint is not None:
        networks = load_networks(args.checkpoint)
    else:
        logger.warning(
            "using --demo-weights: untrained weights, the output is NOT a trained model's "
            "(the face will not follow the driving video)"
        )
        networks = demo_networks()
    return Animator(
        networks,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        compile=args.compile,
    )


class _Bar:
    """A tqdm progress bar on stderr that follows the task's stages."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.stage = ""

    def __call__(self, progress: Any) -> None:
        if not self.enabled:
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
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        options = _options(args)
    except ValidationError as exc:
        message = "; ".join(err["msg"] for err in exc.errors())
        parser.error(f"invalid options: {message}")
    if args.checkpoint is None and not args.demo_weights:
        sys.stderr.write(CHECKPOINT_HELP + "\n")
        return 2
    if not 0 <= args.crf <= 51:
        parser.error("--crf must be between 0 and 51")
    for path in (args.source, args.driving):
        if not path.is_file():
            logger.error("%s: no such file", path)
            return 1

    from worker.media.encode import EncodeSettings
    from worker.media.settings import MediaSettings
    from worker.task import run_animation

    bar = _Bar(not args.no_progress)
    try:
        animator = _load_animator(args)
        result = run_animation(
            args.source,
            args.driving,
            args.output,
            options,
            animator,
            progress=bar,
            settings=MediaSettings(encode=EncodeSettings(crf=args.crf, preset=args.preset)),
        )
    except (MCNetError, ValueError) as exc:
        bar.close()
        logger.error("%s", exc)
        return 1
    bar.close()
    logger.info(
        "wrote %s: %d frames, %dx%d at %.3f fps%s in %.1f s",
        result.output_path,
        result.frames,
        result.width,
        result.height,
        result.fps,
        " with sound" if result.has_audio else "",
        result.seconds,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
