"""Conformance to the official MCNet: the full-size model, filled with the fixture's
deterministic weights, reproduces the official code's outputs within 1e-4 (CPU, fp32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.animator import Animator
from model.keypoints import Keypoints
from model.motion import normalize_keypoints
from model.networks import MCNet
from tests.conformance_fixture import (
    fixture_networks,
    load_fixture,
    missing_fixture_message,
    require_fixture,
)
from tests.prerequisites import missing

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture_file() -> Path:
    try:
        return require_fixture()
    except FileNotFoundError as exc:
        missing(str(exc))


@pytest.fixture(scope="module")
def fixture(fixture_file: Path) -> dict[str, np.ndarray]:
    return load_fixture(fixture_file)


@pytest.fixture(scope="module")
def networks(fixture: dict[str, np.ndarray]) -> MCNet:
    return fixture_networks(fixture)


def max_abs(a: torch.Tensor, b: np.ndarray) -> float:
    return float(np.abs(a.detach().numpy() - b).max())


def images(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).float().permute(0, 3, 1, 2)


def test_state_dict_matches_published_keys(fixture_file: Path) -> None:
    table = fixture_file.parent / "mcnet_vox256_keys.tsv"
    rows = [line.rstrip("\n").split("\t") for line in table.read_text().splitlines()[1:]]
    expected = {(m, k): (shape, dtype) for m, k, shape, dtype in rows}
    model = MCNet()
    got = {
        (part, key): (str(tuple(t.shape)), str(t.dtype).removeprefix("torch."))
        for part in ("generator", "kp_detector")
        for key, t in getattr(model, part).state_dict().items()
    }
    assert got == expected


def test_keypoints(networks: MCNet, fixture: dict[str, np.ndarray]) -> None:
    with torch.inference_mode():
        kp_source = networks.kp_detector(images(fixture["source"][None]))
        kp_driving = networks.kp_detector(images(fixture["driving"]))
    assert kp_source.jacobian is not None and kp_driving.jacobian is not None
    assert max_abs(kp_source.value, fixture["kp_source_value"]) <= TOLERANCE
    assert max_abs(kp_source.jacobian, fixture["kp_source_jacobian"]) <= TOLERANCE
    assert max_abs(kp_driving.value, fixture["kp_driving_value"]) <= TOLERANCE
    assert max_abs(kp_driving.jacobian, fixture["kp_driving_jacobian"]) <= TOLERANCE


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_generator(networks: MCNet, fixture: dict[str, np.ndarray], mode: str) -> None:
    source = images(fixture["source"][None])
    with torch.inference_mode():
        kp_source = networks.kp_detector(source)
        kp_driving = networks.kp_detector(images(fixture["driving"]))
        assert kp_driving.jacobian is not None
        initial = Keypoints(kp_driving.value[:1], kp_driving.jacobian[:1])
        kp_norm = normalize_keypoints(
            kp_source, kp_driving, initial, relative=mode == "relative", adapt_scale=True
        )
        out = networks.generator(source, kp_source, kp_norm)
    assert max_abs(out.deformation, fixture[f"{mode}_deformation"]) <= TOLERANCE
    assert max_abs(out.occlusion_map[:, 0], fixture[f"{mode}_occlusion_map"]) <= TOLERANCE
    assert max_abs(out.prediction.permute(0, 2, 3, 1), fixture[f"{mode}_prediction"]) <= TOLERANCE


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_animator_serving_path(networks: MCNet, fixture: dict[str, np.ndarray], mode: str) -> None:
    """What the service runs (the fused copy, batched, source cached) matches too."""
    animator = Animator(networks, device="cpu", batch_size=2)
    batches = animator.animate_batches(
        fixture["source"], fixture["driving"], relative=mode == "relative", adapt_scale=True
    )
    out = torch.cat(list(batches)).permute(0, 2, 3, 1)
    assert max_abs(out, fixture[f"{mode}_prediction"]) <= TOLERANCE


def test_a_clone_without_the_fixture_is_told_where_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCNET_FIXTURE", str(tmp_path / "nowhere.npz"))
    with pytest.raises(FileNotFoundError) as missing:
        require_fixture()
    assert str(missing.value) == missing_fixture_message(tmp_path / "nowhere.npz")
    assert "../shared/conformance/" in str(missing.value) and "MCNET_FIXTURE" in str(missing.value)
