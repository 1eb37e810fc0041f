"""`mcnet submit`: animate through a running service (core.client), with a progress bar.

    mcnet submit photo.jpg talking.mp4 --server http://host:8000 --key KEY -o out.mp4 \\
        -O layout=side_by_side -O seed=3
    mcnet submit photo.jpg --template ID -o out.mp4   # a motion template: mcnet template create

The service's options (`--server`, `--key`), the progress line and the sentences for a
refused request are shared with `mcnet template create|list|delete` (core.template_client_cli).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import httpx

from core.client import ApiError, Client
from core.job_view import JobView
from core.output_path import output_problem
from core.protocol import JobState, Stage
from core.template_view import TemplateView

logger = logging.getLogger(__name__)

_BAR = 30


# What a template's extraction does in the stages it shares with a job.
_TEMPLATE_LABELS = {Stage.ANIMATING: "Measuring the motion", Stage.ENCODING: "Writing the template"}


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """`--server` and `--key`: which service, with which API key."""
    parser.add_argument(
        "--server", default=os.environ.get("MCNET_SERVER", "http://127.0.0.1:8000"),
        help="the service's URL (MCNET_SERVER; default http://127.0.0.1:8000)",
    )  # fmt: skip
    parser.add_argument("--key", help="API key (default: the MCNET_API_KEY environment variable)")


def api_key(args: argparse.Namespace) -> str | None:
    """The API key of `--key` or MCNET_API_KEY; None without one."""
    return args.key or os.environ.get("MCNET_API_KEY") or None


def failure_line(prog: str, server: str, exc: Exception) -> str:
    """One line saying why a request to the service at `server` failed."""
    if isinstance(exc, ApiError):
        return f"{prog}: the service refused ({exc.status}): {exc.detail}"
    if isinstance(exc, httpx.ConnectError):
        return (
            f"{prog}: no service answers at {server} ({exc}): start one (`mcnet serve`), or "
            "give its URL with --server URL or MCNET_SERVER."
        )
    return f"{prog}: {exc}"


# What `failure_line` explains: a refusal, an unreachable service, a file not read.
SERVICE_ERRORS = (ApiError, httpx.HTTPError, OSError)


class StatusLine:
    """The progress line on stderr, rewritten in place (nothing with `quiet`)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.shown = ""

    def show(self, line: str) -> None:
        """Replace the line with `line`."""
        if self.quiet or line == self.shown:
            return
        sys.stderr.write("\r" + line.ljust(len(self.shown)))
        sys.stderr.flush()
        self.shown = line

    def end(self) -> None:
        """End the line, so what follows starts on a line of its own."""
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self.shown = ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcnet submit",
        description="Animate a photo with a driving video, or with a motion template kept on "
        "the service (mcnet template create), on a service.",
    )
    parser.add_argument("source", type=Path, help="the photo with a face")
    parser.add_argument(
        "driving", type=Path, nargs="?",
        help="the driving video of a talking head (or --template ID instead)",
    )  # fmt: skip
    parser.add_argument(
        "--template", metavar="ID",
        help="a motion template on the service (mcnet template create), instead of a video",
    )  # fmt: skip
    add_service_options(parser)
    parser.add_argument("-o", "--output", type=Path, help="where to save the MP4")
    parser.add_argument(
        "-O", "--option", action="append", default=[], metavar="NAME=VALUE",
        help="a job option, e.g. -O layout=side_by_side -O seed=3 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--webhook", help="URL the service calls when the job ends")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def progress_line(view: JobView | TemplateView) -> str:
    """One line of the progress bar for a job, or a template being made."""
    progress = view.progress
    if view.status is JobState.QUEUED:
        position = view.queue_position if isinstance(view, JobView) else None
        return f"queued (position {position})" if position else "queued"
    total = progress.frames_total
    fraction = 1.0 if progress.stage is Stage.DONE or view.status is JobState.FINISHED else (
        progress.frames_done / total if total and progress.stage is Stage.ANIMATING else 0.0
    )  # fmt: skip
    filled = round(fraction * _BAR)
    bar = "#" * filled + "-" * (_BAR - filled)
    frames = f" {progress.frames_done}/{total} frames" if total else ""
    label = progress.stage.label
    if isinstance(view, TemplateView):
        label = _TEMPLATE_LABELS.get(progress.stage, label)
    return f"[{bar}] {fraction * 100:3.0f}% {label}{frames}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mcnet submit`: 0 when the MP4 is saved, 1 when the job failed or
    was canceled, 2 when the request was refused or the service unreachable."""
    args = _parser().parse_args(argv)
    options: dict[str, str] = {}
    for entry in args.option:
        name, sep, value = entry.partition("=")
        if not sep or not name:
            sys.stderr.write(f"mcnet submit: -O wants NAME=VALUE, got {entry!r}\n")
            return 2
        options[name] = value
    output = args.output or Path(f"{args.source.stem}-animated.mp4")
    problem = output_problem(output)  # before the upload, not after the whole job
    if problem is None and args.driving is not None and args.template is not None:
        problem = "give a driving video or --template ID, not both"
    if problem is None and args.driving is None and args.template is None:
        problem = (
            "give a driving video, or a motion template kept on the service with "
            "--template ID (mcnet template create VIDEO makes one)"
        )
    for path in (args.source, args.driving):
        if problem is None and path is not None and not path.is_file():
            problem = f"{path}: no such file"
    if problem is not None:
        sys.stderr.write(f"mcnet submit: {problem}\n")
        return 2
    status = StatusLine(args.quiet)
    try:
        with Client(args.server, api_key(args)) as api:
            job = api.submit(
                args.source, args.driving, options, template=args.template, webhook=args.webhook
            )
            sys.stderr.write(f"job {job.id}\n")
            sys.stderr.flush()
            status.show(progress_line(job))
            job = api.wait(job.id, lambda seen: status.show(progress_line(seen)))
            status.end()
            if job.status is not JobState.FINISHED:
                sys.stderr.write(f"mcnet submit: the job {job.status.value}: {job.error}\n")
                return 1
            api.download(job.id, output)
    except SERVICE_ERRORS as exc:
        status.end()
        sys.stderr.write(failure_line("mcnet submit", args.server, exc) + "\n")
        return 2
    for warning in job.warnings:
        sys.stderr.write(f"note: {warning}\n")
    sys.stdout.write(f"{output}\n")
    return 0
