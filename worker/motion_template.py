"""Motion templates: extract a driving video's motion once (`extract_template`), and drive
jobs with it (`template_scan`, `template_reference`, `template_motion`, `template_sound`).

Extraction runs the same passes a job from the video runs (the scan that finds the clip's
crop box, then the crops through the keypoint detector, batch by batch), so a job from the
template gets the very keypoints the job from the video computes: the same pixels.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InvalidOptionsError, JobCanceledError
from core.face_detector import FaceDetector
from core.media_probe import VideoInfo, probe_video
from core.options import Crop, JobOptions
from core.protocol import Progress, Stage
from core.template_format import (
    SIDE_BY_SIDE_NEEDS_VIDEO,
    AudioTrack,
    Framing,
    MotionTemplate,
    TemplateHeader,
    check_compatible,
    write_template,
)
from worker.driving import DrivingScan, scan_driving, timed_model_inputs
from worker.framing import CropBox
from worker.media.audio import copy_sound
from worker.media.settings import MediaSettings
from worker.pipeline import prefetch

if TYPE_CHECKING:
    from model.animator import Animator
    from model.keypoints import Keypoints

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractResult:
    """What `extract_template` wrote."""

    path: Path
    frames: int
    fps: float
    bytes: int
    has_audio: bool
    seconds: float
    warnings: tuple[str, ...] = ()


def extract_template(
    video_path: Path,
    output_path: Path,
    animator: Animator,
    *,
    crop: Crop = "auto",
    progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    settings: MediaSettings | None = None,
    video: VideoInfo | None = None,
    model: str | None = None,
) -> ExtractResult:
    """Write the motion template of the video at `video_path` to `output_path`.

    Raises what a job's driving video raises (NoFaceError("driving"), InvalidInputError and
    its subclasses, JobCanceledError). `model` (worker.model_loading.describe_model) is recorded:
    only that model can use the keypoints.
    """
    started = time.monotonic()
    settings = settings or MediaSettings()

    def report(stage: Stage, done: int, total: int) -> None:
        if progress is not None:
            progress(Progress(stage, done, total))

    def tick(stage: Stage, total: int) -> Callable[[int], None]:
        def on_frame(done: int) -> None:
            if should_cancel is not None and should_cancel():
                raise JobCanceledError("The job was canceled.")
            if done % 16 == 0:
                report(stage, done, max(total, done))

        return on_frame

    report(Stage.PROBING, 0, 0)
    info = video or probe_video(video_path, settings.limits)
    report(Stage.CROPPING, 0, info.frames)
    detector = FaceDetector() if crop == "auto" else None
    scan = scan_driving(
        video_path,
        settings,
        detector=detector,
        estimate=info.frames,
        tick=tick(Stage.CROPPING, info.frames),
    )
    report(Stage.ANIMATING, 0, scan.frames)
    times: list[float] = []
    values: list[np.ndarray] = []
    jacobians: list[np.ndarray] = []

    def crops() -> Iterator[np.ndarray]:
        for at, crop_image in timed_model_inputs(
            video_path, scan, settings, tick(Stage.ANIMATING, scan.frames)
        ):
            times.append(np.nan if at is None else at)
            yield crop_image

    # decoding and cropping on their own thread, as in a job
    for keypoints in animator.detect(prefetch(crops(), 2 * animator.batch_size)):
        values.append(keypoints.value.cpu().numpy())
        if keypoints.jacobian is not None:
            jacobians.append(keypoints.jacobian.cpu().numpy())
    report(Stage.ENCODING, scan.frames, scan.frames)
    sound = copy_sound(video_path) if info.has_audio else None
    all_values = np.concatenate(values).astype(np.float32)
    header = TemplateHeader(
        frames=len(all_values),
        num_kp=all_values.shape[1],
        fps=(scan.fps.numerator, scan.fps.denominator),
        start=scan.start,
        framing=Framing(
            crop=crop,
            box=None if scan.crop is None else (scan.crop.x, scan.crop.y, scan.crop.side),
            width=scan.width,
            height=scan.height,
            warnings=scan.warnings,
        ),
        model=model,
        precision=animator.precision,
        audio=None if sound is None else AudioTrack(codec=sound[1], container=sound[2]),
    )
    template = MotionTemplate(
        header=header,
        keypoints=all_values,
        jacobians=np.concatenate(jacobians).astype(np.float32) if jacobians else None,
        timestamps=np.asarray(times, dtype=np.float64),
        audio=None if sound is None else sound[0],
    )
    size = write_template(output_path, template)
    report(Stage.DONE, header.frames, header.frames)
    seconds = time.monotonic() - started
    logger.info(
        "wrote %s: %d frames, %d bytes in %.1f s", output_path, header.frames, size, seconds
    )
    return ExtractResult(
        path=Path(output_path),
        frames=header.frames,
        fps=float(header.rate),
        bytes=size,
        has_audio=sound is not None,
        seconds=seconds,
        warnings=scan.warnings,
    )


def template_scan(
    template: MotionTemplate, options: JobOptions, animator: Animator, model: str | None
) -> DrivingScan:
    """What a scan of the template's video found, from the template; checks that the job
    can run from it (this model's keypoints, no layout needing the driving pixels)."""
    check_compatible(template, model, animator.networks.config.num_kp)
    if options.layout == "side_by_side":
        raise InvalidOptionsError(SIDE_BY_SIDE_NEEDS_VIDEO)
    header = template.header
    framing = header.framing
    box = None if framing.box is None else CropBox(*framing.box)
    return DrivingScan(
        header.frames, header.rate, header.start, framing.width, framing.height, box,
        framing.warnings,
    )  # fmt: skip


def template_reference(
    template: MotionTemplate, options: JobOptions, animator: Animator, source: np.ndarray
) -> tuple[int | None, Keypoints | None]:
    """The index and keypoints of the frame relative motion is measured from (None: the
    first frame), as the video's `_reference` chooses it: auto compares every frame's pose
    with the source's."""
    if options.best_frame == "none":
        return None, None
    if options.best_frame == "auto":
        from model.motion import nearest_pose

        index = nearest_pose(animator.pose(source), template.keypoints)
        logger.info("best frame: %d", index)
    else:
        index = int(options.best_frame)
        options.check_best_frame(template.frames)
    jacobians = template.jacobians
    return index, animator.stored_keypoints(
        template.keypoints[index : index + 1],
        None if jacobians is None else jacobians[index : index + 1],
    )


def template_motion(template: MotionTemplate, animator: Animator) -> Iterator[Keypoints]:
    """The template's keypoints as the animator's batches."""
    return animator.motion_batches(template.keypoints, template.jacobians)


@contextmanager
def template_sound(template: MotionTemplate, folder: Path) -> Iterator[Path | None]:
    """The template's sound as a file in `folder` while the context lasts (None: none)."""
    if template.audio is None:
        yield None
        return
    handle, name = tempfile.mkstemp(prefix=".sound-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(template.audio)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
