"""Loading and writing checkpoints.

Official checkpoints are `torch.save` dicts with `generator` and `kp_detector` state dicts
(other entries, such as the discriminator or optimizer states, are ignored; one leading
`module.` is removed). They are read with `weights_only=True`, so a pickle that would run
code is refused. Our lean form is one safetensors file of `MCNet.state_dict()`.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from core.errors import CheckpointError
from model.config import MCNetConfig
from model.file_kind import file_kind
from model.networks import MCNet

log = logging.getLogger(__name__)

PARTS = ("generator", "kp_detector")
CONFIG_METADATA = "mcnet_config"
# The memory bank's learned noise scale (a checkpoint key), and its value in demo weights.
DEMO_NOISE_PARAMETER = "generator.mbUnit.styleconv.weight"
DEMO_NOISE_WEIGHT = 1.0
SOURCE_HINT = (
    "MCNet checkpoints come from the official release (github.com/harlanhong/ICCV2023-MCNET, "
    "the checkpoint links in its README); `mcnet convert` turns one into safetensors."
)


def _strip_module(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def _describe(problems: list[str], limit: int = 8) -> str:
    shown = problems[:limit]
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return ", ".join(shown) + more


def check_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise CheckpointError naming missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [
        f"{key} {tuple(state[key].shape)} != {tuple(expected[key].shape)}"
        for key in sorted(set(state) & set(expected))
        if not isinstance(state[key], torch.Tensor) or state[key].shape != expected[key].shape
    ]
    messages = []
    if missing:
        messages.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        messages.append(f"unexpected keys: {_describe(unexpected)}")
    if misshaped:
        messages.append(f"mis-shaped keys: {_describe(misshaped)}")
    if messages:
        raise CheckpointError(
            f"{where} does not match the MCNet model ({'; '.join(messages)}). "
            "Is it a checkpoint of the vox-256 MCNet with 15 keypoints?"
        )


def _refused_global(err: pickle.UnpicklingError) -> str | None:
    """The Python object torch's safe loader refused to build, from its message, if any."""
    for line in str(err).splitlines():
        if "GLOBAL" in line:
            return line.strip()
    return None


def _read_torch(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_global(err)
        if refused is None:
            raise CheckpointError(
                f"{path} is a damaged checkpoint: its data is not a torch checkpoint's. "
                f"Download it again. {SOURCE_HINT}"
            ) from err
        raise CheckpointError(
            f"{path} was refused: it holds Python objects that would run code when loaded, "
            f"not only tensors ({refused}). Use a checkpoint from a source you trust. "
            f"{SOURCE_HINT}"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint: {err}") from err
    if not isinstance(raw, dict) or not all(isinstance(raw.get(p), dict) for p in PARTS):
        found = sorted(raw)[:10] if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(
            f"{path} is not an MCNet checkpoint: it needs 'generator' and 'kp_detector' "
            f"state dicts, found {found}"
        )
    return {part: {_strip_module(k): v for k, v in raw[part].items()} for part in PARTS}


def _read_safetensors(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    try:
        flat = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    parts: dict[str, dict[str, torch.Tensor]] = {p: {} for p in PARTS}
    unexpected = []
    for key, tensor in flat.items():
        part, _, rest = key.partition(".")
        if part in parts and rest:
            parts[part][rest] = tensor
        else:
            unexpected.append(key)
    if unexpected:
        raise CheckpointError(
            f"{path} does not match the MCNet model (unexpected keys: {_describe(unexpected)})"
        )
    return parts


def read_state_dicts(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """The `generator` and `kp_detector` state dicts of a .pth(.tar) or .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist. {SOURCE_HINT}")
    kind = file_kind(path)
    if not kind.may_be_checkpoint:
        raise CheckpointError(
            f"{path} is not a checkpoint: it is {kind.description}. {SOURCE_HINT}"
        )
    if kind.name == "safetensors":
        return _read_safetensors(path)
    return _read_torch(path)


def stored_config(path: str | Path) -> MCNetConfig | None:
    """The configuration a safetensors file of ours records (None for other files)."""
    if Path(path).suffix != ".safetensors":
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    text = metadata.get(CONFIG_METADATA)
    return None if text is None else MCNetConfig.from_json(text)


def load_networks(path: str | Path, config: MCNetConfig | None = None) -> MCNet:
    """Build the networks and load a checkpoint into them (strict).

    config: None means the configuration a safetensors file records, else the published one.
    """
    states = read_state_dicts(path)
    networks = MCNet(config or stored_config(path))
    for part in PARTS:
        module = getattr(networks, part)
        check_state_dict(module, states[part], f"{path} ({part})")
        module.load_state_dict(states[part], strict=True)
    log.info("loaded checkpoint %s", path)
    return networks


def save_safetensors(networks: MCNet, path: str | Path) -> None:
    """Write the lean form: every tensor of both networks, with the configuration."""
    state = {k: v.detach().contiguous().cpu() for k, v in networks.state_dict().items()}
    save_file(state, str(path), metadata={CONFIG_METADATA: networks.config.to_json()})


def demo_networks(config: MCNetConfig | None = None, seed: int = 0) -> MCNet:
    """Deterministic untrained weights: for trying the pipeline without a checkpoint.

    The output is not a trained model's: faces will not move like the driving video.
    The memory bank's noise scale starts at zero in a fresh model, so `seed` would change
    nothing; it is set to DEMO_NOISE_WEIGHT (the unit noise of StyleGAN's layers) so the
    seed shows (full model, two seeds: 0.6 of 255 levels apart on average, 6 at most).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        networks = MCNet(config)
    with torch.no_grad():
        networks.get_parameter(DEMO_NOISE_PARAMETER).fill_(DEMO_NOISE_WEIGHT)
    return networks
