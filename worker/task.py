"""One animation job, from the uploaded files to the finished MP4: used by the CLI and the worker.

Stages (reported through `progress`): probing (read and check the inputs), cropping (one
pass over the driving video: frame count, rate, the clip's crop box; best_frame=auto is a
second pass), animating (decode, crop, animate in batches, paste back, encode: streamed),
encoding (flush, sound up to the video's end, faststart), done. The result is written
under a temporary name in the output's folder and renamed, so nobody sees half a file.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InvalidInputError, JobCanceledError
from core.face_detector import FaceDetector
from core.files import replaced_atomically
from core.media_probe import VideoInfo, probe_video
from core.options import JobOptions
from core.protocol import DEMO_MODEL, Progress, Stage
from core.template_format import MotionTemplate, is_template, read_template
from worker.driving import (
    DrivingScan,
    driving_frames,
    ended_early,
    model_inputs,
    scan_driving,
)
from worker.framing import CropBox, resize_square, source_crop
from worker.layout import SideBySide, fit_height
from worker.media.encode import Mp4Writer
from worker.media.images import cap_size, load_image
from worker.media.settings import MediaSettings
from worker.motion_template import (
    template_motion,
    template_reference,
    template_scan,
    template_sound,
)
from worker.paste import Paster, even_canvas
from worker.pipeline import BackgroundWriter, prefetch

if TYPE_CHECKING:
    from model.animator import Animator
    from model.keypoints import Keypoints

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskResult:
    """What `run_animation` wrote."""

    output_path: Path
    frames: int
    fps: float
    width: int
    height: int
    has_audio: bool
    reference_frame: int | None  # the driving frame relative motion was measured from
    seconds: float
    warnings: tuple[str, ...] = ()  # for the user: things that may weaken the result


@dataclass
class _Job:
    """Callbacks of one run: progress reports and the cancel check."""

    progress: Callable[[Progress], None] | None
    should_cancel: Callable[[], bool] | None

    def report(self, stage: Stage, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(Progress(stage, done, total))

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise JobCanceledError("The job was canceled.")

    def ticker(
        self, stage: Stage, total: int, every: int = 1, offset: int = 0
    ) -> Callable[[int], None]:
        """A per-frame callback: cancel check, and a progress report every `every` frames
        (`offset` + frames done, of `total`: a stage of two passes counts on)."""

        def tick(done: int) -> None:
            self.check_cancel()
            if done % every == 0:
                self.report(stage, offset + done, max(total, offset + done))

        return tick


def _reference(
    options: JobOptions,
    animator: Animator,
    source: np.ndarray,
    driving_path: Path,
    scan: DrivingScan,
    settings: MediaSettings,
    job: _Job,
) -> tuple[int | None, Keypoints | None]:
    """The index and keypoints of the frame relative motion is measured from (None: first).

    One pass over the clip either way: up to the given index, or (auto) the whole clip,
    keeping the keypoints of the best frame so far. The keypoints are detected in the
    batches the animation pass detects them in (and a template stores), so they are the
    same numbers, to the bit.
    """
    if options.best_frame == "none":
        return None, None
    if options.best_frame == "auto":
        tick = job.ticker(Stage.CROPPING, 2 * scan.frames, every=16, offset=scan.frames)
        crops = model_inputs(driving_path, scan, settings, tick)
        index, reference = _best_frame(animator, source, crops)
        logger.info("best frame: %d", index)
        return index, reference
    index = int(options.best_frame)
    options.check_best_frame(scan.frames)
    frames = model_inputs(driving_path, scan, settings, lambda _: job.check_cancel())
    try:
        for start, keypoints in _batches(animator, frames):
            if index < start + keypoints.value.shape[0]:
                return index, keypoints.row(index - start)
    finally:
        frames.close()
    raise InvalidInputError("The driving video contains fewer frames than it said.")


def _batches(animator: Animator, crops: Iterator[np.ndarray]) -> Iterator[tuple[int, Keypoints]]:
    """(index of the first frame, keypoints) of the crops, batch by batch."""
    start = 0
    for keypoints in animator.detect(crops):
        yield start, keypoints
        start += keypoints.value.shape[0]


def _best_frame(
    animator: Animator, source: np.ndarray, crops: Generator[np.ndarray, None, None]
) -> tuple[int, Keypoints]:
    """The index and keypoints of the frame whose pose is nearest the source's (the first
    of equals), batch by batch."""
    from model.motion import nearest_pose, pose_distance

    source_pose = animator.pose(source)
    best: tuple[float, int, Keypoints] | None = None
    try:
        for start, keypoints in _batches(animator, crops):
            values = keypoints.value.cpu().numpy()
            position = nearest_pose(source_pose, values)
            distance = pose_distance(source_pose, values[position])
            if best is None or distance < best[0]:
                best = (distance, start + position, keypoints.row(position))
    finally:
        crops.close()
    if best is None:
        raise InvalidInputError("The driving video contains no frames.")
    return best[1], best[2]


def run_animation(
    source_path: Path,
    driving_path: Path,
    output_path: Path,
    options: JobOptions,
    animator: Animator,
    *,
    progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    settings: MediaSettings | None = None,
    video: VideoInfo | None = None,
    model: str | None = None,
) -> TaskResult:
    """Animate the photo at `source_path` with the video (or the motion template, see
    core.template_format) at `driving_path` into an MP4.

    Raises core.errors: NoFaceError("source"|"driving"), InvalidInputError and its
    subclasses UnsupportedMediaError / InputTooLargeError, InvalidOptionsError (a best_frame
    past the end), JobCanceledError (should_cancel() returned true; checked every frame).
    `model` (worker.model_loading.describe_model) is written into the MP4's `comment` tag.
    """
    started = time.monotonic()
    settings = settings or MediaSettings()
    source_path, driving_path, output_path = (
        Path(source_path),
        Path(driving_path),
        Path(output_path),
    )
    job = _Job(progress, should_cancel)

    job.report(Stage.PROBING, 0, 0)
    image = load_image(source_path, settings.limits)
    warnings = list(photo_warnings(image, settings.max_output_side))
    image = cap_size(image, settings.max_output_side)
    template = read_template(driving_path) if is_template(driving_path) else None
    info = None if template is not None else video or probe_video(driving_path, settings.limits)
    job.check_cancel()

    # best_frame=auto: a second pass over a video (a template has its keypoints)
    passes = 2 if options.best_frame == "auto" and template is None else 1
    estimate = template.frames if template is not None else info.frames if info else 0
    job.report(Stage.CROPPING, 0, estimate * passes)
    paste_back = options.effective_paste_back
    detector = FaceDetector() if options.crop == "auto" else None
    box = None
    if detector is not None:
        canvas = even_canvas(image, settings.max_output_side)
        box = source_crop(canvas, detector)
        source = box.cut(canvas)
        logger.info("source: %dx%d, face crop %s", canvas.shape[1], canvas.shape[0], box)
    else:
        canvas, source = image, resize_square(image)
    if template is not None:
        scan = template_scan(template, options, animator, model)
        reference_index, reference = template_reference(template, options, animator, source)
    else:
        scan = scan_driving(
            driving_path,
            settings,
            detector=detector,
            estimate=estimate,
            tick=job.ticker(Stage.CROPPING, estimate * passes, every=16),
        )
        reference_index, reference = _reference(
            options, animator, source, driving_path, scan, settings, job
        )
        warnings.extend(ended_early(scan, info.frames if info is not None else 0))

    composer = _Composer.plan(options, canvas, box if paste_back else None, source, scan, settings)
    width, height = composer.width, composer.height

    with (
        replaced_atomically(output_path) as temp,
        _sound(options, driving_path, info, template, output_path.parent) as audio_from,
        Mp4Writer(
            temp,
            width,
            height,
            scan.fps,
            settings=settings.encode,
            audio_from=audio_from,
            audio_start=scan.start,
            metadata=result_tags(model),
        ) as writer,
    ):
        frames = (
            None
            if template is not None
            else driving_frames(driving_path, scan, settings, lambda _: job.check_cancel())
        )
        _animate(
            writer, animator, options, source, reference, frames, template, composer, job,
            scan.frames,
        )  # fmt: skip
        job.report(Stage.ENCODING, writer.frames, scan.frames)
    job.report(Stage.DONE, writer.frames, writer.frames)
    seconds = time.monotonic() - started
    logger.info("wrote %s: %d frames in %.1f s", output_path, writer.frames, seconds)
    return TaskResult(
        output_path=output_path,
        frames=writer.frames,
        fps=float(scan.fps),
        width=width,
        height=height,
        has_audio=writer.has_audio,
        reference_frame=reference_index,
        seconds=seconds,
        warnings=(*warnings, *scan.warnings),
    )


@contextmanager
def _sound(
    options: JobOptions,
    driving_path: Path,
    info: VideoInfo | None,
    template: MotionTemplate | None,
    folder: Path,
) -> Iterator[Path | None]:
    """The file the result's sound comes from (None: no sound): the driving video, or the
    sound a template copied from it."""
    if not options.audio:
        yield None
    elif template is not None:
        with template_sound(template, folder) as path:
            yield path
    else:
        yield driving_path if info is not None and info.has_audio else None


def photo_warnings(image: np.ndarray, max_side: int) -> Iterator[str]:
    """What the result should be looked at for because of the photo: scaled down to the cap."""
    height, width = image.shape[:2]
    if max(height, width) > max_side:
        yield (
            f"The photo is {width}x{height}; results are at most {max_side} pixels on their "
            f"longer side (MCNET_MAX_OUTPUT_SIDE), so it was scaled down."
        )


def result_tags(model: str | None) -> dict[str, str]:
    """The result MP4's container tags: which model made it (untrained demo weights say so)."""
    if model is None:
        return {}
    if model == DEMO_MODEL:
        made_by = "untrained demo weights (not a trained model's motion)"
    else:
        made_by = f"the checkpoint {model}"
    return {"title": "MCNet animation", "comment": f"Made by MCNet with {made_by}."}


@dataclass
class _Composer:
    """Turns each animated 256 crop into an output frame: pasted back and/or laid out."""

    paster: Paster | None
    layout: SideBySide | None
    width: int
    height: int

    @classmethod
    def plan(
        cls,
        options: JobOptions,
        canvas: np.ndarray,
        box: CropBox | None,
        source: np.ndarray,
        scan: DrivingScan,
        settings: MediaSettings,
    ) -> _Composer:
        """Output geometry: the photo's (paste-back) or the crop's, alone or side by side."""
        paster = Paster(canvas, box) if box is not None else None
        result = canvas.shape if paster is not None else source.shape
        if options.layout != "side_by_side":
            return cls(paster, None, result[1], result[0])
        if paster is not None:  # the photo | the full driving frame | the pasted result
            driving = (scan.height, scan.width, 3)
            wanted = min(canvas.shape[0], settings.side_by_side_max_height)
            fitted = fit_height([canvas.shape, driving, result], wanted, settings.max_output_side)
            layout = SideBySide(canvas, fitted)
            width, height = layout.size(driving, result)
        else:  # three 256 crops, as the official demo writes
            layout = SideBySide(source, source.shape[0])
            width, height = layout.size(source.shape, source.shape)
        return cls(paster, layout, width, height)

    def compose(self, animated: np.ndarray, full: np.ndarray, crop: np.ndarray) -> np.ndarray:
        """The output frame of one animated crop and the driving frame it came from."""
        result = self.paster.paste(animated) if self.paster is not None else animated
        if self.layout is None:
            return result
        return self.layout.compose(full if self.paster is not None else crop, result)


def _animate(
    writer: Mp4Writer,
    animator: Animator,
    options: JobOptions,
    source: np.ndarray,
    reference: Keypoints | None,
    driving: Iterator[tuple[np.ndarray, np.ndarray]] | None,
    template: MotionTemplate | None,
    composer: _Composer,
    job: _Job,
    total: int,
) -> None:
    """Stream: decoded (frame, crop) pairs -> keypoints -> animate in batches -> compose ->
    encode; or, from a template (`driving` None), its keypoints -> animate -> ..."""
    pending: deque[tuple[np.ndarray, np.ndarray]] = deque()  # frames the model holds
    depth = 2 * animator.batch_size  # decoded and composed frames in flight, each way
    # decoding and cropping on their own thread
    decoded = prefetch(driving, depth) if driving is not None else None

    def inputs() -> Iterator[np.ndarray]:
        for full, crop in decoded or ():
            # Before the model takes each frame: a cancel or a shutdown (Ctrl+C of `mcnet
            # serve`) stops the job within the frame being animated, not the batch after it.
            job.check_cancel()
            if composer.layout is not None:
                pending.append((full, crop))
            yield crop

    job.report(Stage.ANIMATING, 0, total)

    def stored() -> Iterator[Keypoints]:
        for keypoints in template_motion(template, animator) if template is not None else ():
            job.check_cancel()  # as inputs() does, before the model takes each batch
            yield keypoints

    motion = animator.detect(inputs()) if template is None else stored()
    frames = animator.animate_motion(
        source,
        motion,
        relative=options.motion == "relative",
        adapt_scale=options.adapt_scale,
        reference=reference,
        seed=options.seed,
    )

    def compose_and_write(item: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        writer.write(composer.compose(*item))

    done = 0
    try:
        with BackgroundWriter(compose_and_write, depth) as output:
            for animated in frames:
                full, crop = pending.popleft() if pending else (animated, animated)
                output.submit((animated, full, crop))
                done += 1
                if done % animator.batch_size == 0 or done == total:
                    job.report(Stage.ANIMATING, done, total)
                job.check_cancel()
    finally:
        frames.close()
        if decoded is not None:
            decoded.close()
