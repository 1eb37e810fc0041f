"""The batched animator against the per-frame path, seeds, streaming and best frame."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from model.animator import Animator
from model.networks import MCNet
from model.reference import animate_frame_by_frame
from tests.model.conftest import random_frames


def test_batched_equals_per_frame(tiny_networks: MCNet) -> None:
    source, driving = random_frames(1, seed=10)[0], random_frames(7, seed=11)
    reference = np.stack(list(animate_frame_by_frame(tiny_networks, source, driving, seed=3)))
    animator = Animator(tiny_networks, device="cpu", batch_size=3)
    batched = np.concatenate(
        [b.permute(0, 2, 3, 1).numpy() for b in animator.animate_batches(source, driving, seed=3)]
    )
    assert batched.shape == reference.shape == (7, 256, 256, 3)
    assert np.abs(batched - reference).max() <= 1e-4
    # The output is not trivially the source: the driving motion changes it.
    assert np.abs(batched[0] - batched[-1]).max() > 1e-3


@pytest.mark.parametrize("relative", [True, False])
def test_batch_size_does_not_change_frames(tiny_networks: MCNet, relative: bool) -> None:
    source, driving = random_frames(1, seed=12)[0], random_frames(5, seed=13)
    one = Animator(tiny_networks, batch_size=1).animate_batches(source, driving, relative=relative)
    four = Animator(tiny_networks, batch_size=4).animate_batches(source, driving, relative=relative)
    a = torch.cat(list(one)).numpy()
    b = torch.cat(list(four)).numpy()
    assert np.abs(a - b).max() <= 1e-4


def _noisy(networks: MCNet) -> MCNet:
    with torch.no_grad():
        networks.generator.mbUnit.styleconv.weight.fill_(0.5)
    return networks


def test_seed_reproducible_and_seeds_differ(tiny_networks: MCNet) -> None:
    networks = _noisy(tiny_networks)
    try:
        source, driving = random_frames(1, seed=14)[0], random_frames(3, seed=15)
        animator = Animator(networks, batch_size=2)
        first = np.stack(list(animator.animate(source, driving, seed=7)))
        again = np.stack(list(animator.animate(source, driving, seed=7)))
        other = np.stack(list(animator.animate(source, driving, seed=8)))
        assert first.dtype == np.uint8 and first.shape == (3, 256, 256, 3)
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other)
    finally:
        with torch.no_grad():
            networks.generator.mbUnit.styleconv.weight.zero_()


def test_streams_lazily_and_reports_progress(tiny_networks: MCNet) -> None:
    source = random_frames(1, seed=16)[0]
    pulled: list[int] = []

    def driving() -> Iterator[np.ndarray]:
        for i, frame in enumerate(random_frames(6, seed=17)):
            pulled.append(i)
            yield frame

    progress: list[int] = []
    frames = Animator(tiny_networks, batch_size=2).animate(
        source, driving(), progress=progress.append
    )
    first = next(frames)
    assert first.shape == (256, 256, 3)
    # The next batch is queued before the first is handed out (one in flight), no more.
    assert pulled == [0, 1, 2, 3]
    rest = list(frames)
    assert len(rest) == 5 and progress == [2, 4, 6]


def test_reference_frame_sets_relative_origin(tiny_networks: MCNet) -> None:
    source, driving = random_frames(1, seed=18)[0], random_frames(4, seed=19)
    animator = Animator(tiny_networks, batch_size=4)

    def run(reference: np.ndarray | None) -> np.ndarray:
        batches = animator.animate_batches(source, driving, reference=reference)
        return torch.cat(list(batches)).numpy()

    default = run(None)
    assert np.abs(default - run(driving[0])).max() <= 1e-4
    assert np.abs(default - run(driving[2])).max() > 1e-3


def test_best_frame_finds_pose_of_source(tiny_networks: MCNet) -> None:
    driving = random_frames(6, seed=20)
    animator = Animator(tiny_networks, batch_size=4)
    assert animator.best_frame(driving[4], driving) == 4


def test_last_batch_padded_for_compiled_graph(tiny_networks: MCNet) -> None:
    """With a compiled generator the last, shorter batch is padded to the compiled size;
    the padding never reaches the output."""
    source, driving = random_frames(1, seed=21)[0], random_frames(5, seed=22)
    plain = Animator(tiny_networks, batch_size=3)
    padded = Animator(tiny_networks, batch_size=3)
    calls: list[int] = []

    def generate(*args: object) -> object:
        calls.append(args[2].value.shape[0])  # type: ignore[attr-defined]
        return tiny_networks.generator.animate(*args)  # type: ignore[arg-type]

    padded._generate._compiled = generate  # stands in for torch.compile's result
    a = torch.cat(list(plain.animate_batches(source, driving))).numpy()
    b = torch.cat(list(padded.animate_batches(source, driving))).numpy()
    assert calls == [3, 3]
    assert b.shape == a.shape == (5, 3, 256, 256)
    assert np.abs(a - b).max() <= 1e-4
