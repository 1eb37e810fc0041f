"""The shared conformance fixture: where it is, its arrays, and networks filled with its
deterministic weights. Used by the conformance tests and the benchmarks."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import numpy as np

from model.networks import MCNet

REPO = Path(__file__).resolve().parents[1]
FIXTURE_NAME = "conformance/mcnet_vox256_fixture.npz"


def fixture_path() -> Path:
    """MCNET_FIXTURE, else ../shared/conformance/ beside the checkout (or the cwd)."""
    if "MCNET_FIXTURE" in os.environ:
        return Path(os.environ["MCNET_FIXTURE"])
    candidates = [
        REPO.parent / "shared" / FIXTURE_NAME,
        Path.cwd().parent / "shared" / FIXTURE_NAME,
    ]
    return next((p for p in candidates if p.is_file()), candidates[0])


def missing_fixture_message(path: Path) -> str:
    """What a clone without the fixture is told (README: "Conformance fixture")."""
    return (
        f"The conformance fixture is not at {path}. It is not in this repository (it holds "
        "outputs of the official MCNet code): put its folder `conformance/` "
        "(mcnet_vox256_fixture.npz, fill.py, mcnet_vox256_keys.tsv) beside the checkout as "
        "../shared/conformance/, or set MCNET_FIXTURE to the .npz. Only the conformance tests "
        "need it (skipped without it, required in CI)."
    )


def require_fixture() -> Path:
    """The fixture's path; FileNotFoundError with the message above when it is missing."""
    path = fixture_path()
    if not path.is_file() or not (path.parent / "mcnet_vox256_keys.tsv").is_file():
        raise FileNotFoundError(missing_fixture_message(path))
    return path


def load_fixture(path: Path | None = None) -> dict[str, np.ndarray]:
    with np.load(path or fixture_path()) as data:
        return {key: data[key] for key in data.files}


def _fill_module(folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_fill", folder / "fill.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(folder / "fill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixture_networks(fixture: dict[str, np.ndarray], path: Path | None = None) -> MCNet:
    """The full model with the weights `fill.py` derives from the fixture's prefixes."""
    fill = _fill_module((path or fixture_path()).parent)
    networks = MCNet()
    for part in ("generator", "kp_detector"):
        module = getattr(networks, part)
        prefix = str(fixture[f"{part}_prefix"])
        module.load_state_dict(fill.fill_state_dict(module.state_dict(), prefix), strict=True)
    return networks
