"""The worker's first measure of its speed: a few frames through the model once it has
loaded, so that the API can estimate jobs (core.estimate) before this worker has finished
one. The first frames also pay for the kernels' set-up, so the figure errs on the slow side
until the worker's finished jobs (added to the same record) outweigh it."""

from __future__ import annotations

import time

import numpy as np

from model.animator import Animator

WARMUP_FRAMES = 2


def measure_speed(animator: Animator, frames: int = WARMUP_FRAMES) -> tuple[int, float]:
    """Animate `frames` frames of a plain picture at the model's input size; the frames and
    the seconds they took."""
    size = animator.networks.config.image_size
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    started = time.perf_counter()
    for _ in animator.animate(picture, [picture] * frames):
        pass
    return frames, time.perf_counter() - started
