"""`mcnet convert CKPT OUT.safetensors`: the official checkpoint in lean, pickle-free form."""

from __future__ import annotations

import argparse
import logging
import sys

from model.checkpoint import load_networks, save_safetensors
from model.config import MCNetConfig
from service.errors import CheckpointError

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
        choices=["full", "tiny"],
        default="full",
        help="model configuration of the checkpoint (full: the published vox-256 model)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        networks = load_networks(args.checkpoint, MCNetConfig.named(args.config))
    except CheckpointError as err:
        sys.stderr.write(f"mcnet convert: {err}\n")
        return 1
    save_safetensors(networks, args.output)
    log.info("wrote %s", args.output)
    return 0
