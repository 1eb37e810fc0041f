"""`mcnet convert CKPT OUT.safetensors`: the official checkpoint in lean, pickle-free form."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from core.errors import CheckpointError
from core.logs import configure_logging
from model.checkpoint import load_networks, save_safetensors
from model.config import MCNetConfig

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mcnet convert",
        description="Convert an official MCNet checkpoint (.pth.tar) to safetensors.",
    )
    parser.add_argument("checkpoint", help="official checkpoint (.pth.tar) or safetensors file")
    parser.add_argument("output", help="where to write the .safetensors file")
    parser.add_argument(
        "--config",
        choices=["vox256", "tiny"],
        default="vox256",
        help="model configuration of the checkpoint (vox256: the published model)",
    )
    args = parser.parse_args(argv)
    configure_logging()
    output = Path(args.output)
    if not output.parent.is_dir():
        sys.stderr.write(
            f"mcnet convert: {output}: the folder {output.parent} does not exist; create it "
            "or choose another path\n"
        )
        return 1
    try:
        networks = load_networks(args.checkpoint, MCNetConfig.named(args.config))
    except CheckpointError as err:
        sys.stderr.write(f"mcnet convert: {err}\n")
        return 1
    save_safetensors(networks, output)
    output.chmod(readable_mode())  # the worker's container user (not the owner) reads it
    log.info("wrote %s", output)
    return 0


def readable_mode() -> int:
    """rw-r--r-- as this process's umask allows (a file anyone may read, as `cp` makes)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
