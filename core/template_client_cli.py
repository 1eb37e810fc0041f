"""`mcnet template`: motion templates kept on a service (core.client), beside the offline
`mcnet template extract` (worker.template_cli, which runs the model here).

    mcnet template create talking.mp4 --server http://host:8000 --key KEY   # prints the id
    mcnet submit photo.jpg --template ID -o out.mp4
    mcnet template list
    mcnet template delete ID

`create`, `list` and `delete` need no torch: the worker's module is imported only for
`extract`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from core.client import Client
from core.client_cli import (
    SERVICE_ERRORS,
    StatusLine,
    add_service_options,
    api_key,
    failure_line,
    progress_line,
)
from core.options import CROPS
from core.protocol import JobState
from core.template_view import TemplateView

EXTRACT_MODULE = "worker.template_cli"  # imported by name: core never imports the worker


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mcnet template` (`extract` is parsed by its own module)."""
    parser = argparse.ArgumentParser(
        prog="mcnet template",
        description="Motion templates: a driving video's motion (keypoints per frame, timing, "
        "sound), to animate any number of photos without the video. `create`, `list` and "
        "`delete` work on a service; `extract` makes a template file here, offline.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="create|list|delete|extract"
    )
    create = commands.add_parser(
        "create",
        help="keep a driving video's motion on a service; prints the template's id",
        description="Upload a driving video; a worker of the service keeps its motion as a "
        "template (the video is then deleted). Waits until it is made and prints its id, for "
        "`mcnet submit PHOTO --template ID`.",
    )
    create.add_argument("video", type=Path, help="driving video (MP4, MOV, WebM, MKV, AVI, GIF)")
    create.add_argument(
        "--crop",
        choices=CROPS,
        help="auto: find the face and crop it as the model was trained (the service's "
        "default); none: the video is already an aligned face crop",
    )
    create.add_argument(
        "--no-wait", action="store_true", help="print the id once uploaded, without waiting"
    )
    create.add_argument("--quiet", action="store_true", help="no progress bar")
    add_service_options(create)
    listing = commands.add_parser(
        "list",
        help="the templates kept on a service for your key, newest first",
        description="The templates kept on a service for your API key, newest first: id, "
        "status, length, size, expiry.",
    )
    add_service_options(listing)
    delete = commands.add_parser(
        "delete",
        help="delete a template kept on a service",
        description="Delete a template kept on a service (one still being made is canceled); "
        "jobs already submitted from it are not affected.",
    )
    delete.add_argument("id", help="the template's id")
    add_service_options(delete)
    commands.add_parser(
        "extract",
        add_help=False,
        help="extract a driving video's motion template to a file, offline (needs torch; "
        "mcnet template extract --help)",
    )
    return parser


def template_line(template: TemplateView) -> str:
    """One line of `mcnet template list`."""
    length = f"{template.duration_seconds:.1f} s, {template.frames} frames"
    size = f", {template.bytes} bytes" if template.bytes is not None else ""
    expires = f", expires {template.expires_at:%Y-%m-%d %H:%M} UTC" if template.expires_at else ""
    error = f": {template.error}" if template.error else ""
    return f"{template.id}  {template.status.value}{error} ({length}{size}{expires})"


def _extract(argv: list[str]) -> int:
    try:  # the worker's module imports torch when it loads the model
        return int(importlib.import_module(EXTRACT_MODULE).main(argv) or 0)
    except ModuleNotFoundError as exc:
        sys.stderr.write(
            f"mcnet template extract: runs the model on this machine, which needs the worker's "
            f"packages ({exc}): install torch and `pip install -e '.[worker]'`, or keep the "
            "motion on a service with `mcnet template create VIDEO`.\n"
        )
        return 2


def _create(api: Client, args: argparse.Namespace, status: StatusLine) -> int:
    template = api.create_template(args.video, crop=args.crop)
    if not args.no_wait:
        sys.stderr.write(f"template {template.id}\n")
        sys.stderr.flush()
        status.show(progress_line(template))
        template = api.wait_template(template.id, lambda seen: status.show(progress_line(seen)))
        status.end()
        if template.status is not JobState.FINISHED:
            why = f": {template.error}" if template.error else ""
            sys.stderr.write(f"mcnet template create: the template {template.status.value}{why}\n")
            return 1
        sound = "with sound" if template.has_audio else "no sound"
        sys.stderr.write(
            f"made: {template.duration_seconds:.1f} s, {template.frames} frames, {sound}; "
            f"animate with: mcnet submit PHOTO --template {template.id}\n"
        )
    sys.stdout.write(f"{template.id}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `mcnet template`: 0 done, 1 the template could not be made, 2 the
    request was refused or the service unreachable (or bad usage)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["extract"]:
        return _extract(args_list)
    args = build_parser().parse_args(args_list)
    prog = f"mcnet template {args.command}"
    if args.command == "create" and not args.video.is_file():
        sys.stderr.write(f"{prog}: {args.video}: no such file\n")
        return 2
    status = StatusLine(getattr(args, "quiet", True))
    try:
        with Client(args.server, api_key(args)) as api:
            if args.command == "create":
                return _create(api, args, status)
            if args.command == "list":
                listed = 0
                for template in api.templates():
                    sys.stdout.write(template_line(template) + "\n")
                    listed += 1
                if not listed:
                    sys.stderr.write(f"{prog}: no templates kept for this key on {args.server}\n")
                return 0
            api.delete_template(args.id)
            sys.stderr.write(f"deleted template {args.id}\n")
            return 0
    except SERVICE_ERRORS as exc:
        status.end()
        sys.stderr.write(failure_line(prog, args.server, exc) + "\n")
        return 2
