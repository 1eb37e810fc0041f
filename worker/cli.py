"""`mcnet animate SOURCE DRIVING -o OUT.mp4`: animate a photo offline, with a progress bar."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from core.cli_options import MODEL_OPTIONS, add_model_options, given_options
from core.encoding import EncodeSettings, X264Preset
from core.errors import MCNetError, NoFaceError
from core.face_check import check_photo_face, check_video_face
from core.logs import configure_logging
from core.media_probe import MediaLimits, probe_image, probe_video
from core.options import JobOptions
from core.output_path import output_problem
from core.protocol import DEMO_MODEL, Stage
from core.settings import ModelSettings, QueueSettings, settings_from_env
from core.template_format import TemplateError, is_template, read_template

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
    parser.add_argument(
        "driving",
        type=Path,
        help="driving video (MP4, MOV, WebM, MKV, AVI, GIF) or motion template (mcnet template "
        "extract)",
    )
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
    add_model_options(parser.add_argument_group("model (default: the MCNET_* environment)"))
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
    return JobOptions(**given_options(args, JobOptions.model_fields))


def model_settings(args: argparse.Namespace) -> ModelSettings:
    """The environment's model settings with the options given here over them."""
    return settings_from_env(ModelSettings, given_options(args, MODEL_OPTIONS))


def _encode_settings(args: argparse.Namespace) -> EncodeSettings:
    given = given_options(args, ("crf", "preset"))
    return EncodeSettings(**{f"encode_{name}": value for name, value in given.items()})


class ProgressBar:
    """A tqdm progress bar on stderr that follows the task's stages: one bar per stage that
    counts frames (none for probing), shown complete when its stage has ended."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.stage = ""

    def __call__(self, progress: Any) -> None:
        if not self.enabled or progress.stage == Stage.DONE:  # the last line says it is done
            return
        from tqdm import tqdm

        if progress.stage != self.stage:
            self.close(finished=True)
            self.stage = progress.stage
            if not progress.frames_total:  # nothing to count yet
                return
            self.bar = tqdm(
                total=progress.frames_total, desc=progress.stage, unit="frame", file=sys.stderr
            )
        if self.bar is not None:
            if progress.frames_total and self.bar.total != progress.frames_total:
                self.bar.total = progress.frames_total
            self.bar.update(progress.frames_done - self.bar.n)

    def close(self, finished: bool = False) -> None:
        """Close the bar; `finished`: its stage ended, so all its frames are done."""
        if self.bar is not None:
            if finished and self.bar.total:
                self.bar.update(self.bar.total - self.bar.n)
            self.bar.close()
            self.bar = None


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mcnet animate`; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging("INFO" if args.verbose else "WARNING")
    try:
        options = _options(args)
        model = model_settings(args)
        encode = _encode_settings(args)
    except ValidationError as exc:
        message = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()
        )
        parser.error(f"invalid options: {message}")
    if model.checkpoint is None and not model.demo_weights:
        sys.stderr.write(CHECKPOINT_HELP + "\n")
        return 2
    limits = QueueSettings().media_limits()
    problem = output_problem(args.output) or input_problem(
        args.source, args.driving, options, limits
    )
    if problem is not None:
        logger.error("%s", problem)
        return 1

    from worker.media.settings import MediaSettings
    from worker.model_loading import describe_model, load_animator
    from worker.task import run_animation

    bar = ProgressBar(not args.no_progress)
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
            settings=MediaSettings(limits=limits, encode=encode),
            model=label,
        )
    except (MCNetError, ValueError) as exc:
        bar.close()
        logger.error("%s", in_cli_words(exc))
        return 1
    bar.close(finished=True)
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


def input_problem(
    source: Path, driving: Path, options: JobOptions, limits: MediaLimits
) -> str | None:
    """What is wrong with the inputs, in this command's words, found as the API finds it
    before a job is queued (no model loaded yet); None when they can be animated."""
    for path in (source, driving):
        if not path.is_file():
            return f"{path}: no such file"
    try:
        probe_image(source, limits)
        if is_template(driving):  # a motion template: its own checks, no video to probe
            options.check_best_frame(read_template(driving).frames)
            if options.crop == "auto":
                check_photo_face(source, limits)
            return None
        video = probe_video(driving, limits)
        options.check_best_frame(video.frames)
        if options.crop == "auto":
            check_photo_face(source, limits)
            check_video_face(driving, limits)
    except MCNetError as exc:
        return in_cli_words(exc)
    return None


def in_cli_words(error: Exception) -> str:
    """An error's message with the API's names of options (`crop=none`, `best_frame`) as
    this command's flags (`--crop none`, `--best-frame`)."""
    if isinstance(error, NoFaceError):
        return str(NoFaceError(error.which, skip="pass --crop none"))
    if isinstance(error, TemplateError):  # prose ("motion template"), no option names
        return str(error)
    message = str(error).removeprefix("Invalid options: ")
    return _API_NAMES.sub(_as_flag, message)


_API_NAMES = re.compile(r"\b(?:send )?(" + "|".join(JobOptions.model_fields) + r")\b(?:=(\w+))?")


def _as_flag(match: re.Match[str]) -> str:
    name, sent = match.group(1), match.group(0).startswith("send ")
    if not (match.group(2) or sent or "_" in name):
        return match.group(0)  # an ordinary word ("motion", "audio"), not an option's name
    flag = "--" + name.replace("_", "-")
    value = f" {match.group(2)}" if match.group(2) else ""
    return ("pass " if sent else "") + flag + value


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
