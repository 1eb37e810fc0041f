"""`mcnet submit`: animate through a running service (core.client), with a progress bar.

    mcnet submit photo.jpg talking.mp4 --server http://host:8000 --key KEY -o out.mp4 \\
        -O layout=side_by_side -O seed=3
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

logger = logging.getLogger(__name__)

_BAR = 30


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcnet submit", description="Animate a photo with a driving video on a service."
    )
    parser.add_argument("source", type=Path, help="the photo with a face")
    parser.add_argument("driving", type=Path, help="the driving video of a talking head")
    parser.add_argument(
        "--server", default=os.environ.get("MCNET_SERVER", "http://127.0.0.1:8000"),
        help="the service's URL (MCNET_SERVER; default http://127.0.0.1:8000)",
    )  # fmt: skip
    parser.add_argument("--key", help="API key (default: the MCNET_API_KEY environment variable)")
    parser.add_argument("-o", "--output", type=Path, help="where to save the MP4")
    parser.add_argument(
        "-O", "--option", action="append", default=[], metavar="NAME=VALUE",
        help="a job option, e.g. -O layout=side_by_side -O seed=3 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--webhook", help="URL the service calls when the job ends")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def progress_line(job: JobView) -> str:
    """One line of the progress bar for `job`."""
    progress = job.progress
    if job.status is JobState.QUEUED:
        where = f" (position {job.queue_position})" if job.queue_position else ""
        return f"queued{where}"
    total = progress.frames_total
    fraction = 1.0 if progress.stage is Stage.DONE or job.status is JobState.FINISHED else (
        progress.frames_done / total if total and progress.stage is Stage.ANIMATING else 0.0
    )  # fmt: skip
    filled = round(fraction * _BAR)
    bar = "#" * filled + "-" * (_BAR - filled)
    frames = f" {progress.frames_done}/{total} frames" if total else ""
    return f"[{bar}] {fraction * 100:3.0f}% {progress.stage.label}{frames}"


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
    for path in (args.source, args.driving):
        if problem is None and not path.is_file():
            problem = f"{path}: no such file"
    if problem is not None:
        sys.stderr.write(f"mcnet submit: {problem}\n")
        return 2
    key = args.key or os.environ.get("MCNET_API_KEY") or None
    shown = [""]

    def show(job: JobView) -> None:
        if args.quiet:
            return
        line = progress_line(job)
        if line != shown[0]:
            sys.stderr.write("\r" + line.ljust(len(shown[0])))
            sys.stderr.flush()
            shown[0] = line

    try:
        with Client(args.server, key) as api:
            job = api.submit(args.source, args.driving, options, webhook=args.webhook)
            sys.stderr.write(f"job {job.id}\n")
            sys.stderr.flush()
            show(job)
            job = api.wait(job.id, show)
            if not args.quiet:
                sys.stderr.write("\n")
            if job.status is not JobState.FINISHED:
                sys.stderr.write(f"mcnet submit: the job {job.status.value}: {job.error}\n")
                return 1
            api.download(job.id, output)
    except ApiError as exc:
        sys.stderr.write(f"\nmcnet submit: the service refused ({exc.status}): {exc.detail}\n")
        return 2
    except httpx.ConnectError as exc:
        sys.stderr.write(
            ("\n" if shown[0] else "")
            + f"mcnet submit: no service answers at {args.server} ({exc}): start one "
            "(`mcnet serve`), or give its URL with --server URL or MCNET_SERVER.\n"
        )
        return 2
    except (httpx.HTTPError, OSError) as exc:
        sys.stderr.write(f"\nmcnet submit: {exc}\n")
        return 2
    for warning in job.warnings:
        sys.stderr.write(f"note: {warning}\n")
    sys.stdout.write(f"{output}\n")
    return 0
