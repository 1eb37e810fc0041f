"""`mcnet template extract VIDEO -o MOTION.mcnet`: a driving video's motion template, offline.

The template (core/template_format.py) drives `mcnet animate PHOTO MOTION.mcnet -o OUT.mp4`
as the video would, to the same pixels, without the video's pixels.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from core.cli_options import add_model_options
from core.errors import MCNetError, NoFaceError
from core.logs import configure_logging
from core.settings import QueueSettings
from core.template_format import SUFFIX
from worker.cli import CHECKPOINT_HELP, ProgressBar, model_settings

logger = logging.getLogger("mcnet.template")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mcnet template`."""
    parser = argparse.ArgumentParser(
        prog="mcnet template",
        description="Motion templates: a driving video's motion (keypoints per frame, timing, "
        "sound), to animate any number of photos without the video.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="extract")
    extract = commands.add_parser(
        "extract",
        help="extract the motion template of a driving video",
        description="Extract the motion template of a driving video; `mcnet animate PHOTO "
        "TEMPLATE -o OUT.mp4` then animates with it as with the video.",
    )
    extract.add_argument("video", type=Path, help="driving video (MP4, MOV, WebM, MKV, AVI, GIF)")
    extract.add_argument(
        "-o", "--output", type=Path, required=True, help=f"template to write ({SUFFIX})"
    )
    extract.add_argument(
        "--crop",
        choices=["auto", "none"],
        default="auto",
        help="auto: find the face and crop it as the model was trained (default); none: the "
        "video is already an aligned face crop",
    )
    add_model_options(extract.add_argument_group("model (default: the MCNET_* environment)"))
    extract.add_argument("--no-progress", action="store_true", help="no progress bar")
    extract.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return parser


def output_problem(path: Path) -> str | None:
    """Why the template cannot be written at `path` (checked before any work), or None."""
    if path.suffix.lower() != SUFFIX:
        return f"{path}: a motion template's name ends in {SUFFIX}; give such an output path"
    folder = path.parent
    if not folder.is_dir():
        return f"{path}: the folder {folder} does not exist; create it or choose another path"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{path}: the folder {folder} is not writable; choose another path"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mcnet template`; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging("INFO" if args.verbose else "WARNING")
    try:
        model = model_settings(args)
    except ValidationError as exc:
        parser.error(f"invalid options: {exc.errors()[0]['msg']}")
    if model.checkpoint is None and not model.demo_weights:
        sys.stderr.write(CHECKPOINT_HELP + "\n")
        return 2
    if not args.video.is_file():
        logger.error("%s: no such file", args.video)
        return 1
    problem = output_problem(args.output)
    if problem is not None:
        logger.error("%s", problem)
        return 1

    from worker.media.settings import MediaSettings
    from worker.model_loading import describe_model, load_animator
    from worker.motion_template import extract_template

    bar = ProgressBar(not args.no_progress)
    try:
        animator = load_animator(model)
        result = extract_template(
            args.video,
            args.output,
            animator,
            crop=args.crop,
            progress=bar,
            settings=MediaSettings(limits=QueueSettings().media_limits()),
            model=describe_model(model),
        )
    except NoFaceError as exc:
        bar.close()
        logger.error("%s", NoFaceError(exc.which, skip="pass --crop none"))
        return 1
    except (MCNetError, ValueError) as exc:
        bar.close()
        logger.error("%s", exc)
        return 1
    bar.close()
    seconds = result.frames / result.fps if result.fps else 0.0
    sound = "with sound" if result.has_audio else "no sound"
    sys.stdout.write(
        f"wrote {result.path}: {result.frames} frames ({seconds:.1f} s at {result.fps:.3f} "
        f"fps, {sound}), {result.bytes} bytes\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
