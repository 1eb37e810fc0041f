"""Command-line options that several commands share, declared once from the settings.

`add_model_options` gives `mcnet worker`, `mcnet workers`, `mcnet serve` and `mcnet animate`
the same model options, their help taken from `ModelSettings`; `given_options` reads the
values a command line gave (None where an option was left out) so that `settings_from_env`
lays them over the environment, the one way every entry point does it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from core.protocol import PRECISIONS
from core.settings import ModelSettings, WorkerSettings

MODEL_OPTIONS = ("checkpoint", "demo_weights", "device", "precision", "batch_size", "compile")
_Group = argparse.ArgumentParser | argparse._ArgumentGroup


def _help(name: str, fields: Mapping[str, Any] = ModelSettings.model_fields) -> str:
    variable = f"MCNET_{name.upper()}"
    return f"{fields[name].description} ({variable})"


def add_model_options(parser: _Group) -> None:
    """--checkpoint, --demo-weights, --device, --precision, --batch-size, --compile."""
    parser.add_argument("--checkpoint", type=Path, help=_help("checkpoint"))
    parser.add_argument(
        "--demo-weights", action="store_true", default=None, help=_help("demo_weights")
    )
    parser.add_argument("--device", metavar="auto|cpu|cuda[:N]", help=_help("device"))
    parser.add_argument("--precision", choices=PRECISIONS, help=_help("precision"))
    parser.add_argument("--batch-size", type=int, help=_help("batch_size"))
    parser.add_argument("--compile", action="store_true", default=None, help=_help("compile"))


def add_layout_options(parser: _Group) -> None:
    """--workers and --threads: how many worker processes, and their CPU threads."""
    fields = WorkerSettings.model_fields
    parser.add_argument("--workers", metavar="N|auto", help=_help("workers", fields))
    parser.add_argument(
        "--threads",
        dest="worker_threads",
        type=int,
        metavar="N",
        help=_help("worker_threads", fields),
    )


def given_options(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The options among `names` (field names) that the command line gave."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
