"""Configuration of the MCNet networks.

`MCNetConfig()` is the published model: the official `config/vox-256.yaml` with 15
keypoints, `Unet_Generator_keypoint_aware` and `ExpendMemoryUnit` (a 512 x 32 x 32
memory bank), as the official README's demo command builds it. `MCNetConfig.tiny()`
runs the same code with few channels, for fast tests.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KeypointDetectorConfig:
    """Hourglass keypoint detector with per-keypoint jacobians."""

    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    temperature: float = 0.1
    scale_factor: float = 0.25
    estimate_jacobian: bool = True


@dataclass(frozen=True)
class DenseMotionConfig:
    """Hourglass that turns sparse keypoint motion into a dense flow and an occlusion map."""

    block_expansion: int = 64
    max_features: int = 1024
    num_blocks: int = 5
    scale_factor: float = 0.25
    kp_variance: float = 0.01


@dataclass(frozen=True)
class MemoryBankConfig:
    """The meta-memory bank and its identity-conditioned query (ExpendMemoryUnit)."""

    channels: int = 512
    spatial: int = 32
    style_features: int = 512
    style_hidden: int = 128
    dynamic_kernels: int = 4
    dynamic_ratio: float = 0.25
    dynamic_temperature: float = 34.0
    attention_divisor: float = 4.0


@dataclass(frozen=True)
class GeneratorConfig:
    """U-Net generator; the memory bank compensates the warped features at three scales."""

    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 3
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)
    memory: MemoryBankConfig = field(default_factory=MemoryBankConfig)


@dataclass(frozen=True)
class MCNetConfig:
    """The whole model. Defaults are the published vox-256 checkpoint's."""

    num_kp: int = 15
    num_channels: int = 3
    image_size: int = 256
    kp_detector: KeypointDetectorConfig = field(default_factory=KeypointDetectorConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    @classmethod
    def tiny(cls) -> MCNetConfig:
        """The same architecture with few channels and a small memory bank (tests)."""
        return cls(
            num_kp=10,
            kp_detector=KeypointDetectorConfig(block_expansion=8, max_features=64, num_blocks=5),
            generator=GeneratorConfig(
                block_expansion=8,
                max_features=64,
                dense_motion=DenseMotionConfig(block_expansion=8, max_features=64, num_blocks=5),
                memory=MemoryBankConfig(channels=32, spatial=8, style_features=32, style_hidden=16),
            ),
        )

    @classmethod
    def named(cls, name: str) -> MCNetConfig:
        """`vox256` (the published model) or `tiny`: the names of MCNET_MODEL_CONFIG."""
        if name == "vox256":
            return cls()
        if name == "tiny":
            return cls.tiny()
        raise ValueError(f"unknown model configuration {name!r}: use 'vox256' or 'tiny'")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MCNetConfig:
        data: dict[str, Any] = json.loads(text)
        generator = dict(data["generator"])
        generator["dense_motion"] = DenseMotionConfig(**generator["dense_motion"])
        generator["memory"] = MemoryBankConfig(**generator["memory"])
        data["generator"] = GeneratorConfig(**generator)
        data["kp_detector"] = KeypointDetectorConfig(**data["kp_detector"])
        return cls(**data)
