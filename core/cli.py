"""The `mcnet` command: hands each subcommand to the package that owns it.

Each owner is imported only when its subcommand runs, so `mcnet api` never imports
torch and `mcnet --help` is instant. The options several commands share are in
`core.cli_options`.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module with a `main(argv) -> int`, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "animate": ("worker.cli", "animate a photo with a driving video or template (offline)"),
    "template": (
        "core.template_client_cli",
        "motion templates on a service (create, list, delete); extract one offline",
    ),
    "convert": ("model.cli", "convert an official .pth.tar checkpoint to safetensors"),
    "serve": ("service.local", "run API, workers and (if REDIS_URL is unset) Redis locally"),
    "api": ("service.api_main", "run the HTTP API only"),
    "worker": ("worker.worker_main", "run one GPU worker (RQ) only"),
    "workers": ("core.worker_pool", "run the worker processes this host serves best (--workers)"),
    "submit": ("core.client_cli", "animate through a running service, with a progress bar"),
}


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
