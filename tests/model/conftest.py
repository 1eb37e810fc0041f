"""Fixtures of the model tests: the tiny configuration with deterministic weights; the
conformance tests skipped (outside CI) without the conformance fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoint import demo_networks
from model.config import MCNetConfig
from model.networks import MCNet
from tests.conformance_fixture import require_fixture
from tests.prerequisites import skip_unless


def _fixture_missing() -> str | None:
    try:
        require_fixture()
    except FileNotFoundError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that use the conformance fixture (`fixture_file`) skip without it."""
    skip_unless(items, Path(__file__).parent, "fixture_file", _fixture_missing)


@pytest.fixture(scope="session")
def tiny_networks() -> MCNet:
    networks = demo_networks(MCNetConfig.tiny(), seed=1)
    # Untrained BatchNorm statistics are the identity; give them spread like a trained net.
    with torch.no_grad():
        generator = torch.Generator().manual_seed(2)
        for name, buf in networks.named_buffers():
            if name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand(buf.shape, generator=generator))
    return networks


def random_frames(count: int, seed: int, size: int = 256) -> np.ndarray:
    """Smooth random RGB frames `N x size x size x 3` uint8 (blobs, so keypoints move)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    frames = []
    for i in range(count):
        cx, cy = 0.5 + 0.2 * np.sin(i / 3 + rng.uniform()), 0.5 + 0.2 * np.cos(i / 4)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
        base = rng.uniform(0, 1, 3)
        image = blob[..., None] * base + 0.2 * rng.uniform(0, 1, (size, size, 3))
        frames.append((np.clip(image, 0, 1) * 255).astype(np.uint8))
    return np.stack(frames)
