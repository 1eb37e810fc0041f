"""The reference path: the published networks run the way the official demo loop runs them.

Batch 1, the source re-encoded for every frame, each result copied to the host, the literal
networks (`model.networks.MCNet`, not the fused serving copy). It is the baseline the
benchmarks measure the serving path (`model.animator.Animator`) against, and the tests
check that both give the same frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from model.animator import frame_noise, to_image_tensor
from model.motion import normalize_keypoints
from model.networks import MCNet


def animate_frame_by_frame(
    networks: MCNet,
    source: np.ndarray,
    driving: Iterable[np.ndarray],
    *,
    relative: bool = True,
    adapt_scale: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Iterator[np.ndarray]:
    """Yields one `H x W x 3` float32 frame in [0, 1] per driving frame (`H x W x 3` uint8 or
    float); the memory bank's noise of frame i is `frame_noise(seed, i)`, as the animator's."""
    device = torch.device(device)
    config = networks.config
    levels, spatial = config.generator.num_down_blocks, config.generator.memory.spatial
    with torch.inference_mode():
        image = to_image_tensor(source[None], device)
        kp_source = networks.kp_detector(image)
        kp_initial = None
        for index, frame in enumerate(driving):
            frame_tensor = to_image_tensor(frame[None], device)
            kp_driving = networks.kp_detector(frame_tensor)
            kp_initial = kp_initial or kp_driving
            kp_norm = normalize_keypoints(
                kp_source, kp_driving, kp_initial, relative=relative, adapt_scale=adapt_scale
            )
            noise = torch.from_numpy(frame_noise(seed, index, levels, spatial)[None]).to(device)
            out = networks.generator(image, kp_source, kp_norm, noise)
            yield out.prediction[0].permute(1, 2, 0).cpu().numpy()
