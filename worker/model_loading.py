"""The one place an `Animator` is built from settings (`mcnet worker`, `mcnet animate`)."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CheckpointError
from core.protocol import DEMO_MODEL
from core.settings import ModelSettings

if TYPE_CHECKING:
    from model.animator import Animator

logger = logging.getLogger(__name__)

NO_MODEL = (
    "No model: set MCNET_CHECKPOINT (or --checkpoint) to an MCNet checkpoint, or pass "
    "--demo-weights to try the service with untrained weights."
)


_HASH_CHUNK = 2**20


def describe_model(settings: ModelSettings) -> str:
    """The label of the model the settings name, as the job JSON, `/readyz`, the CLI and the
    result's metadata show it: the checkpoint's file name and the first 12 hex digits of its
    sha256, or "demo" for untrained demo weights."""
    if settings.checkpoint is None:
        return DEMO_MODEL
    return f"{settings.checkpoint.name} sha256:{_sha256(settings.checkpoint)[:12]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_mount(settings: ModelSettings) -> None:
    """A checkpoint path that is a folder: in a container, the host path did not exist
    and Docker created an empty folder there; say which variable and which host path."""
    path = settings.checkpoint
    if path is None or not path.is_dir():
        return
    host = settings.checkpoint_host_path
    if host:
        raise CheckpointError(
            f"MCNET_CHECKPOINT={host} (in .env) does not exist on the Docker host, so Docker "
            f"mounted an empty folder, made at {host}, at {path}: set MCNET_CHECKPOINT to "
            "the checkpoint file's path on the host, remove that folder, and start again."
        )
    raise CheckpointError(
        f"MCNET_CHECKPOINT={path} is a folder, not a checkpoint file: set it to the file."
    )


def load_animator(settings: ModelSettings) -> Animator:
    """Load the networks the settings name onto their device, once. Raises CheckpointError."""
    from model.animator import Animator
    from model.checkpoint import demo_networks, load_networks
    from model.config import MCNetConfig
    from model.precision import set_process_precision

    # vox256: the published configuration, or the one a safetensors file of ours records
    config = MCNetConfig.tiny() if settings.net_config == "tiny" else None
    started = time.perf_counter()
    _check_mount(settings)
    if settings.checkpoint is not None:
        networks = load_networks(settings.checkpoint, config)
    elif settings.demo_weights:
        logger.warning(
            "using untrained demo weights: the output is NOT a trained model's (the face "
            "will not follow the driving video)"
        )
        networks = demo_networks(config or MCNetConfig())
    else:
        raise CheckpointError(NO_MODEL)
    animator = Animator(
        networks,
        device=settings.device,
        precision=settings.precision,
        batch_size=settings.batch_size,
        compile=settings.compile,
    )
    # Process-wide (TF32 off for exact fp32 on CUDA): the worker and `mcnet animate` load
    # one model per process, here, at start.
    set_process_precision(animator.device, settings.precision)
    logger.info(
        "model loaded in %.2f s on %s (%s, batch %d)",
        time.perf_counter() - started,
        animator.device,
        settings.precision,
        animator.batch_size,
    )
    return animator
