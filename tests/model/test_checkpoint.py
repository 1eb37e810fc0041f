"""Checkpoints: the official layout loads; damaged, mismatched and unsafe files fail clearly."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from core.errors import CheckpointError
from model.checkpoint import load_networks, save_safetensors
from model.cli import main as convert_main
from model.config import MCNetConfig
from model.networks import MCNet

TINY = MCNetConfig.tiny()


def official_layout(networks: MCNet) -> dict[str, object]:
    """What the official training script saves: DataParallel prefixes, extra entries."""
    generator = {f"module.{k}": v for k, v in networks.generator.state_dict().items()}
    kp_detector = {f"module.{k}": v for k, v in networks.kp_detector.state_dict().items()}
    optimizer = torch.optim.Adam(networks.kp_detector.parameters(), lr=1e-4)
    return {
        "generator": generator,
        "kp_detector": kp_detector,
        "discriminator": {"module.conv.weight": torch.zeros(2, 2)},
        "optimizer_generator": optimizer.state_dict(),
        "epoch": 99,
    }


def same_weights(a: MCNet, b: MCNet) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_official_layout_loads(tiny_networks: MCNet, tmp_path: Path) -> None:
    path = tmp_path / "mcnet.pth.tar"
    torch.save(official_layout(tiny_networks), path)
    loaded = load_networks(path, TINY)
    assert same_weights(loaded, tiny_networks)
    assert not loaded.training


def test_convert_to_safetensors_and_back(tiny_networks: MCNet, tmp_path: Path) -> None:
    source, lean = tmp_path / "mcnet.pth.tar", tmp_path / "mcnet.safetensors"
    torch.save(official_layout(tiny_networks), source)
    assert convert_main([str(source), str(lean), "--config", "tiny"]) == 0
    assert same_weights(load_networks(lean), tiny_networks)  # configuration read from the file


def test_missing_key_is_named(tiny_networks: MCNet, tmp_path: Path) -> None:
    layout = official_layout(tiny_networks)
    del layout["generator"]["module.final.bias"]  # type: ignore[attr-defined]
    path = tmp_path / "missing.pth.tar"
    torch.save(layout, path)
    with pytest.raises(CheckpointError, match=r"missing keys: final\.bias"):
        load_networks(path, TINY)


def test_wrong_shape_is_named(tiny_networks: MCNet, tmp_path: Path) -> None:
    layout = official_layout(tiny_networks)
    layout["kp_detector"]["module.kp.bias"] = torch.zeros(3)  # type: ignore[index]
    path = tmp_path / "shape.pth.tar"
    torch.save(layout, path)
    with pytest.raises(CheckpointError, match=r"mis-shaped keys: kp\.bias \(3,\)"):
        load_networks(path, TINY)


def test_full_checkpoint_refused_by_tiny_model(tiny_networks: MCNet, tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    save_safetensors(tiny_networks, path)
    with pytest.raises(CheckpointError, match="mis-shaped keys"):
        load_networks(path, MCNetConfig())


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_code_running_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"generator": {"x": RunsCode(marker)}, "kp_detector": {}}, path)
    with pytest.raises(CheckpointError, match="would run code") as refused:
        load_networks(path, TINY)
    assert "system" in str(refused.value)  # names what it refused to build
    assert "weights_only" not in str(refused.value)  # never advises the unsafe load
    assert not marker.exists()
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(CheckpointError):
        load_networks(plain, TINY)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pth.tar", ".safetensors"])
def test_damaged_file(tiny_networks: MCNet, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"whole{suffix}"
    if suffix == ".safetensors":
        save_safetensors(tiny_networks, path)
    else:
        torch.save(official_layout(tiny_networks), path)
    damaged = tmp_path / f"damaged{suffix}"
    damaged.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    expected = "not a readable" if suffix == ".safetensors" else "truncated or damaged zip"
    with pytest.raises(CheckpointError, match=expected):
        load_networks(damaged, TINY)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "dict.pth"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="needs 'generator' and 'kp_detector'"):
        load_networks(path, TINY)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_networks(tmp_path / "nothing.pth", TINY)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"", "an empty file"),
        (b"\n<!DOCTYPE html><html><head><title>Virus scan warning</title>", "an HTML web page"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200), "a JPEG image"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "a PNG image"),
        (bytes(range(7, 256)) * 3, "unknown binary data"),
        (b"Not Found\n", "a text file"),
    ],
)
def test_file_of_another_kind_is_named(tmp_path: Path, content: bytes, kind: str) -> None:
    """A failed download saved as the checkpoint: told apart from an unsafe pickle."""
    for name in ("mcnet.pth.tar", "mcnet.safetensors"):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="is not a checkpoint: it is " + kind) as err:
            load_networks(path, TINY)
        assert "run code" not in str(err.value)
        assert "weights_only" not in str(err.value)


def test_pickle_that_is_not_a_checkpoint_is_damaged(tmp_path: Path) -> None:
    """Pickle data torch's safe loader cannot read, without code in it: damaged, not unsafe."""
    path = tmp_path / "odd.pth"
    path.write_bytes(b"\x80\x02" + bytes([227]) * 64)
    with pytest.raises(CheckpointError, match="damaged checkpoint") as err:
        load_networks(path, TINY)
    assert "weights_only" not in str(err.value)


def test_demo_weights_show_the_seed() -> None:
    """Demo weights draw the memory bank's noise into the picture, so `seed` changes it."""
    import numpy as np

    from model.animator import Animator
    from model.checkpoint import demo_networks

    animator = Animator(demo_networks(TINY), device="cpu")
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (256, 256, 3), np.uint8)
    driving = [rng.integers(0, 256, (256, 256, 3), np.uint8) for _ in range(2)]
    first, again, other = (
        torch.cat(list(animator.animate_batches(source, driving, seed=seed))) for seed in (0, 0, 1)
    )
    assert torch.equal(first, again)
    assert float((first - other).abs().max()) * 255 > 1.0
