"""The `mcnet` command: hands each subcommand to the package that owns it.

Each owner is imported only when its subcommand runs, so `mcnet api` never imports
torch and `mcnet --help` is instant. Also the command-line options that two commands
share (`add_model_options`: `mcnet worker` and `mcnet serve`, which passes them on).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# subcommand -> (module with a `main(argv) -> int`, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "animate": ("worker.cli", "animate a photo with a driving video into an MP4 (offline)"),
    "convert": ("model.cli", "convert an official .pth.tar checkpoint to safetensors"),
    "serve": ("service.local", "run API, one worker and (if REDIS_URL is unset) Redis locally"),
    "api": ("service.api_main", "run the HTTP API only"),
    "worker": ("worker.worker_main", "run one GPU worker (RQ) only"),
    "submit": ("core.client_cli", "animate through a running service, with a progress bar"),
}


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The worker's model options, shared by `mcnet worker` and `mcnet serve`."""
    parser.add_argument("--checkpoint", type=Path, help="MCNet checkpoint (MCNET_CHECKPOINT)")
    parser.add_argument(
        "--demo-weights", action="store_true", help="untrained weights: try it without a checkpoint"
    )
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], help="MCNET_DEVICE")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="MCNET_PRECISION")
    parser.add_argument("--batch-size", type=int, help="MCNET_BATCH_SIZE")
    parser.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile (MCNET_COMPILE)"
    )


def _usage() -> str:
    lines = ["usage: mcnet <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "mcnet <command> --help shows the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(_usage() + "\n")
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        sys.stderr.write(f"mcnet: unknown command {name!r}\n\n{_usage()}\n")
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
