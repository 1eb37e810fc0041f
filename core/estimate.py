"""How long a job should take: the live workers' measured speed and the frames ahead of it.

Each worker adds, to its record in Redis, the frames of every job it finished and the
seconds those runs took (`SPEED_FIELDS`, written by `record_speed`). The API reads them
(with the queue and the running jobs' progress) into a `Workload`, from which each waiting
or running job's estimate follows without another read. Torch-free.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from redis import Redis

FRAMES_FIELD = "mcnet_frames_rendered"  # fields of a worker's RQ record
SECONDS_FIELD = "mcnet_render_seconds"
SPEED_FIELDS = (FRAMES_FIELD, SECONDS_FIELD)


def record_speed(connection: Redis, worker_key: str, frames: int, seconds: float) -> None:
    """Add a finished job's frames and seconds to the worker's record (its measured speed)."""
    if frames <= 0 or seconds <= 0:
        return
    with connection.pipeline() as pipe:
        pipe.hincrby(worker_key, FRAMES_FIELD, frames)
        pipe.hincrbyfloat(worker_key, SECONDS_FIELD, seconds)
        pipe.execute()


def speed_of(frames: object, seconds: object) -> float | None:
    """Frames per second from a worker record's two fields (bytes, str or None); None when
    the worker has not finished a job yet (or the record is unreadable)."""
    try:
        done, spent = float(_text(frames) or 0), float(_text(seconds) or 0)
    except ValueError:
        return None
    return done / spent if done > 0 and spent > 0 else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Workload:
    """What stands between now and the end of each job, read once."""

    speeds: tuple[float, ...]  # frames per second of each live worker that has measured one
    running_frames_left: int  # frames still to render in the running jobs
    queued_frames: tuple[int, ...]  # frames of each waiting job, in queue order (next first)
    frames_through: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # frames_through[p]: the frames of the first p waiting jobs
        sums = tuple(itertools.accumulate(self.queued_frames, initial=0))
        object.__setattr__(self, "frames_through", sums)

    @property
    def frames_per_second(self) -> float | None:
        """The live workers' speed together; None when none has measured one."""
        return sum(self.speeds) if self.speeds else None

    def queued_seconds(self, position: int) -> float | None:
        """Seconds until the waiting job at `position` (1: next) should end: the running
        jobs' rest, the jobs ahead and its own frames at the live workers' joint speed."""
        total = self.frames_per_second
        if total is None or not 1 <= position < len(self.frames_through):
            return None
        return (self.running_frames_left + self.frames_through[position]) / total

    def started_seconds(self, frames_left: int, own_speed: float | None) -> float | None:
        """Seconds until a running job should end: its rest at its own pace so far, else at
        a live worker's average speed."""
        speed = own_speed or (sum(self.speeds) / len(self.speeds) if self.speeds else None)
        if speed is None or speed <= 0:
            return None
        return max(0, frames_left) / speed


def own_speed(frames_done: int, seconds_running: float) -> float | None:
    """A running job's pace so far (frames per second), once it has rendered a frame."""
    if frames_done <= 0 or seconds_running <= 0:
        return None
    return frames_done / seconds_running


def long_job_warning(seconds: float | None, threshold: float) -> str | None:
    """The submit answer's warning when a job should take longer than `threshold` seconds
    (0: never warn)."""
    if seconds is None or threshold <= 0 or seconds <= threshold:
        return None
    return (
        f"This job should take about {describe_duration(seconds)} at the speed the workers "
        "have measured (its frames and the jobs ahead of it). Try a few seconds of the "
        "video first, or cancel it with DELETE on its URL."
    )


def describe_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 20 min`: a duration for people."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
