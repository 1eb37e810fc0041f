"""The worker's first measure of its speed, taken once its model has loaded."""

from __future__ import annotations

from model.animator import Animator
from worker.warmup import WARMUP_FRAMES, measure_speed


def test_a_few_frames_through_the_model_give_a_speed(animator: Animator) -> None:
    frames, seconds = measure_speed(animator)
    assert frames == WARMUP_FRAMES and seconds > 0
    more, _ = measure_speed(animator, frames=3)
    assert more == 3
