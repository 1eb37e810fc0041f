"""The batched animator: a source image and a stream of driving frames -> animated frames.

The source's keypoints and encoder features are computed once per job; driving frames are
consumed `batch_size` at a time, so memory does not grow with the video's length. Each
output frame depends only on the source, the reference frame and its own driving frame (and
its own noise, drawn from (seed, frame index)), so results do not depend on the batch size.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from model.compiled import CompiledOrEager
from model.fusion import fuse_for_inference
from model.generator import SourceFeatures
from model.keypoints import Keypoints
from model.mixed_precision import FP32_ISLANDS, to_mixed_precision
from model.motion import movement_scale, nearest_pose, relative_keypoints
from model.networks import MCNet
from model.precision import REDUCED_DTYPES, Precision, check_precision

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]

# Device memory per frame of a batch (activations of the full model at 256x256), to pick a
# batch size from free memory. Measured on the CPU as the growth of peak memory from batch 4
# to 8 to 12: 240 MiB per frame in fp32, 128 MiB under 16-bit autocast; these keep a third
# more for the CUDA caching allocator and cuDNN workspaces.
BYTES_PER_FRAME = {"fp32": 320 * 2**20, "bf16": 180 * 2**20, "fp16": 180 * 2**20}
MAX_AUTO_BATCH = 32
CPU_BATCH = 1  # measured: batching gives nothing on a CPU (compute-bound) and costs memory


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`None`/"auto": CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def auto_batch_size(device: torch.device, precision: Precision) -> int:
    """Frames per batch: from free device memory on CUDA, a small constant on CPU."""
    if device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(1, min(MAX_AUTO_BATCH, (free * 0.7) // BYTES_PER_FRAME[precision])))


def frame_noise(seed: int, index: int, levels: int, spatial: int) -> np.ndarray:
    """The memory bank's noise of one frame: `levels x 1 x S x S`, from (seed, index)."""
    rng = np.random.default_rng([seed, index])
    return rng.standard_normal((levels, 1, spatial, spatial), dtype=np.float32)


def to_image_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """`N x H x W x 3` uint8 (or float in [0, 1]) -> `N x 3 x H x W` float32 on `device`.

    On CUDA the frames go through pinned memory, so the copy does not wait for the GPU.
    """
    tensor = _to_device(torch.from_numpy(np.ascontiguousarray(frames)), device)
    tensor = tensor.permute(0, 3, 1, 2)
    if tensor.dtype == torch.uint8:
        return tensor.float().div_(255)
    return tensor.float()


def _to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True)


class HostFrames:
    """A batch of predictions on its way to the host as `N x H x W x 3` uint8.

    On CUDA the conversion and the copy are queued behind the GPU's work (into pinned
    memory, with an event), so creating this does not wait; `numpy()` waits for this batch
    only. Each batch gets its own buffer: frames handed out stay valid.
    """

    def __init__(self, images: torch.Tensor):
        """images: `N x 3 x H x W` in [0, 1]."""
        pixels = images.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        self._done: torch.cuda.Event | None = None
        if pixels.device.type == "cuda":
            self._host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
            self._host.copy_(pixels, non_blocking=True)
            self._done = torch.cuda.Event()
            self._done.record()
        else:
            self._host = pixels.cpu()

    def numpy(self) -> np.ndarray:
        if self._done is not None:
            self._done.synchronize()
        return self._host.numpy()


def _chunks(items: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


@dataclass(frozen=True)
class PreparedSource:
    """A source image on the device with what the networks need of it, once per job."""

    keypoints: Keypoints
    features: SourceFeatures


class Animator:
    """Holds the networks on one device and animates jobs, batch by batch.

    It runs a fused copy of the networks (`model.fusion`): the same numbers up to float
    rounding, fewer operations.

    precision: fp32 is exact (on CUDA once `model.precision.set_process_precision` turned
    TF32 off, at the entry point); bf16 (CPU with AVX-512 BF16 or AMX, or CUDA) and fp16
    (CUDA) run the copy with 16-bit weights under autocast, with fp32 islands
    (`model.mixed_precision`); a device that does not support the precision raises
    PrecisionError.
    """

    def __init__(
        self,
        networks: MCNet,
        device: str | torch.device | None = None,
        precision: Precision = "fp32",
        batch_size: int | None = None,
        compile: bool = False,
        channels_last: bool | None = None,
        fp32_islands: Collection[str] = FP32_ISLANDS,
    ):
        """compile: torch.compile the generator (falls back to eager if it fails);
        channels_last: NHWC convolutions (default: on; oneDNN's 16-bit CPU kernels and CUDA's
        want NHWC, and fp32 on a CPU ran 0.99 to 1.3x the NCHW path's speed in three runs,
        as exact; False keeps NCHW);
        fp32_islands: the modules kept fp32 under a
        16-bit precision (the default is the measured choice; benchmarks vary it)."""
        self.device = resolve_device(device)
        check_precision(precision, self.device)
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.precision: Precision = precision
        # A copy with batch norms folded and up blocks as sub-pixel convs (model/fusion.py);
        # `networks` itself is left as it is.
        self.networks = fuse_for_inference(networks).to(self.device)
        if precision != "fp32":
            to_mixed_precision(self.networks, REDUCED_DTYPES[precision], fp32_islands)
        self.channels_last = True if channels_last is None else channels_last
        if self.channels_last:
            for parameter in self.networks.parameters():
                if parameter.dim() == 4:
                    parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
        self._generate = CompiledOrEager(self.networks.generator.animate, enabled=compile)
        self.batch_size = batch_size or auto_batch_size(self.device, precision)
        memory = networks.config.generator.memory
        self._noise_shape = (networks.config.generator.num_down_blocks, memory.spatial)

    def _autocast(self) -> AbstractContextManager[object]:
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=REDUCED_DTYPES[self.precision])

    def _images(self, frames: np.ndarray) -> torch.Tensor:
        images = to_image_tensor(frames, self.device)
        if self.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    @torch.inference_mode()
    def prepare(self, source: np.ndarray) -> PreparedSource:
        """Keypoints and encoder features of a `H x W x 3` source image."""
        image = self._images(source[None])
        with self._autocast():
            keypoints = self.networks.kp_detector(image).to(torch.float32)
            features = self.networks.generator.encode_source(image)
        return PreparedSource(keypoints, features)

    @torch.inference_mode()
    def keypoints(self, frames: np.ndarray) -> Keypoints:
        """Keypoints (fp32) of `N x H x W x 3` frames."""
        with self._autocast():
            return self.networks.kp_detector(self._images(frames)).to(torch.float32)

    def _noise(self, seed: int, first: int, count: int) -> torch.Tensor:
        levels, spatial = self._noise_shape
        noise = np.stack([frame_noise(seed, first + i, levels, spatial) for i in range(count)])
        return _to_device(torch.from_numpy(noise), self.device)

    def detect(self, frames: Iterable[np.ndarray]) -> Iterator[Keypoints]:
        """The keypoints (fp32, on the device) of `H x W x 3` frames, `batch_size` at a time."""
        for chunk in _chunks(frames, self.batch_size):
            yield self.keypoints(np.stack(chunk))

    def motion_batches(
        self, values: np.ndarray, jacobians: np.ndarray | None
    ) -> Iterator[Keypoints]:
        """Stored keypoints (`N x K x 2`, `N x K x 2 x 2` fp32) as device batches."""
        for first in range(0, len(values), self.batch_size):
            yield self.stored_keypoints(
                values[first : first + self.batch_size],
                None if jacobians is None else jacobians[first : first + self.batch_size],
            )

    def stored_keypoints(self, values: np.ndarray, jacobians: np.ndarray | None) -> Keypoints:
        """A batch of stored keypoints (`B x K x 2`, `B x K x 2 x 2`) on the device, fp32."""
        value = _to_device(torch.from_numpy(np.ascontiguousarray(values, np.float32)), self.device)
        if jacobians is None:
            return Keypoints(value, None)
        jac = _to_device(torch.from_numpy(np.ascontiguousarray(jacobians, np.float32)), self.device)
        return Keypoints(value, jac)

    def animate_batches(
        self,
        source: np.ndarray,
        driving: Iterable[np.ndarray],
        *,
        relative: bool = True,
        adapt_scale: bool = True,
        reference: np.ndarray | None = None,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yields `B x 3 x H x W` float32 predictions in [0, 1] (on the device), in order.

        reference: the frame relative motion is measured from (default: the first frame).
        progress(frames_done) is called after each batch.
        """
        return self.animate_motion_batches(
            source,
            self.detect(driving),
            relative=relative,
            adapt_scale=adapt_scale,
            reference=None if reference is None else self.keypoints(reference[None]),
            seed=seed,
            progress=progress,
        )

    def animate_motion_batches(
        self,
        source: np.ndarray,
        motion: Iterable[Keypoints],
        *,
        relative: bool = True,
        adapt_scale: bool = True,
        reference: Keypoints | None = None,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> Iterator[torch.Tensor]:
        """`animate_batches` from the driving frames' keypoints (batches of at most
        `batch_size`, fp32 on the device): whether they were just detected on a video's
        frames or read from a motion template, the rest of the path is this one.

        reference: the reference frame's keypoints (batch of one; default: the first frame's).
        """
        prepared = self.prepare(source)
        kp_reference = reference
        scale = 1.0
        done = 0
        for kp_driving in motion:
            count = kp_driving.value.shape[0]
            with torch.inference_mode():
                if kp_reference is None:
                    kp_reference = kp_driving.first()
                if done == 0 and relative and adapt_scale:
                    # Once per job: the hull areas are computed on the host.
                    scale = movement_scale(prepared.keypoints.value, kp_reference.value)
                if self._generate.compiled and count < self.batch_size:
                    # A compiled graph is specialised to the batch size: pad the last batch
                    # rather than compile again.
                    kp_driving = _pad(kp_driving, self.batch_size)
                kp_norm = (
                    relative_keypoints(prepared.keypoints, kp_driving, kp_reference, scale)
                    if relative
                    else kp_driving
                )
                noise = self._noise(seed, done, kp_driving.value.shape[0])
                with self._autocast():
                    generation = self._generate(
                        prepared.features, prepared.keypoints, kp_norm, noise
                    )
                prediction = generation.prediction[:count].float()
            done += count
            if progress is not None:
                progress(done)
            yield prediction

    def animate(
        self,
        source: np.ndarray,
        driving: Iterable[np.ndarray],
        *,
        relative: bool = True,
        adapt_scale: bool = True,
        reference: np.ndarray | None = None,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> Generator[np.ndarray, None, None]:
        """Yields one `H x W x 3` uint8 frame per driving frame (see `animate_batches`)."""
        return _host_frames(
            self.animate_batches(
                source,
                driving,
                relative=relative,
                adapt_scale=adapt_scale,
                reference=reference,
                seed=seed,
                progress=progress,
            )
        )

    def animate_motion(
        self,
        source: np.ndarray,
        motion: Iterable[Keypoints],
        *,
        relative: bool = True,
        adapt_scale: bool = True,
        reference: Keypoints | None = None,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> Generator[np.ndarray, None, None]:
        """Yields one `H x W x 3` uint8 frame per driving keypoint set (see
        `animate_motion_batches`)."""
        return _host_frames(
            self.animate_motion_batches(
                source,
                motion,
                relative=relative,
                adapt_scale=adapt_scale,
                reference=reference,
                seed=seed,
                progress=progress,
            )
        )

    def pose(self, image: np.ndarray) -> np.ndarray:
        """The keypoint values (`K x 2`, host) of one `H x W x 3` image, to compare poses."""
        return self.keypoints(image[None]).value[0].cpu().numpy()

    def best_frame(self, source: np.ndarray, driving: Iterable[np.ndarray]) -> int:
        """Index of the driving frame whose pose (normalised keypoints) is nearest the source's."""
        source_value = self.pose(source)
        values = [kp.value.cpu().numpy() for kp in self.detect(driving)]
        return nearest_pose(source_value, np.concatenate(values))


def _host_frames(batches: Iterator[torch.Tensor]) -> Generator[np.ndarray, None, None]:
    """Batches of predictions as `H x W x 3` uint8 frames, one batch in flight: the next
    batch is queued on the device before the frames of the previous one are handed out, so
    the device works while the caller does."""
    previous: HostFrames | None = None
    for batch in batches:
        current = HostFrames(batch)
        if previous is not None:
            yield from previous.numpy()
        previous = current
    if previous is not None:
        yield from previous.numpy()


def _pad(keypoints: Keypoints, batch: int) -> Keypoints:
    """A batch padded to `batch` by repeating its last keypoints."""
    extra = batch - keypoints.value.shape[0]
    value = torch.cat([keypoints.value, keypoints.value[-1:].expand(extra, -1, -1)])
    jac = keypoints.jacobian
    if jac is not None:
        jac = torch.cat([jac, jac[-1:].expand(extra, -1, -1, -1)])
    return Keypoints(value, jac)
