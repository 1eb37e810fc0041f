"""`mcnet convert CKPT OUT.safetensors`: the official checkpoint in lean, pickle-free form."""

from __future__ import annotations

import argparse
import logging
import sys

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
    try:
        networks = load_networks(args.checkpoint, MCNetConfig.named(args.config))
    except CheckpointError as err:
        sys.stderr.write(f"mcnet convert: {err}\n")
        return 1
    save_safetensors(networks, args.output)
    log.info("wrote %s", args.output)
    return 0
