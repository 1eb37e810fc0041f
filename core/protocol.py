"""The job protocol between the API and the worker: what is queued, how far a job is, how it ended.

The API enqueues `TASK` by its dotted path (it never imports the worker) with the job id,
the options and the probe's facts about the driving video. The worker writes `Progress`
into the job's meta while it runs and, when the job fails, one `JobOutcome` (the outcome,
a readable error); the API reads both back. The same `Progress` is what the task reports
and what `GET /jobs/{id}` answers.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Literal, get_args

from pydantic import Field
from pydantic.dataclasses import dataclass

# The numeric precisions a worker animates with (`model.precision` says which device runs which).
Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

TASK = "worker.rq_task.animate_job"
# The extraction of a motion template (POST /templates), queued on the same queue; its RQ
# job carries `kind` TEMPLATE_KIND in its meta and is never shown as an animation job.
TEMPLATE_TASK = "worker.template_task.extract_template_job"
TEMPLATE_KIND = "template"
# The model label of untrained demo weights (a checkpoint's label: its file name and sha256
# prefix). Workers record their label; the job JSON and `/readyz` show it.
DEMO_MODEL = "demo"


class Stage(enum.StrEnum):
    """The stages of a job, in the order they come (progress never goes back)."""

    QUEUED = "queued"
    PROBING = "probing"
    CROPPING = "cropping"
    ANIMATING = "animating"
    ENCODING = "encoding"
    DONE = "done"

    @property
    def order(self) -> int:
        """Position of the stage: 0 for queued, up to done."""
        return list(Stage).index(self)

    @property
    def label(self) -> str:
        """What the stage does, for people (the web page shows it)."""
        return _LABELS[self]


_LABELS = {
    Stage.QUEUED: "Waiting for a free worker",
    Stage.PROBING: "Reading the video",
    Stage.CROPPING: "Finding the face",
    Stage.ANIMATING: "Animating",
    Stage.ENCODING: "Writing the video",
    Stage.DONE: "Finishing",
}


class JobState(enum.StrEnum):
    """The API's words for a job's state."""

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def ended(self) -> bool:
        """Whether a job in this state has ended (finished, failed or canceled)."""
        return self in (JobState.FINISHED, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class Progress:
    """Where a job is. Progress only moves forward: to a later stage, or to more frames
    done within a stage."""

    stage: Stage = Field(description="The stage; they come in the order of the enum.")
    frames_done: int = Field(
        description="Frames done in this stage (cropping: frames scanned for the face box; "
        "animating: frames animated and encoded)."
    )
    frames_total: int = Field(description="Frames of the driving video.")

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as stored in job meta."""
        return {
            "stage": self.stage.value,
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
        }

    def key(self) -> tuple[int, int]:
        """Order of progress: stage first, then frames (a later update never goes back)."""
        return (self.stage.order, self.frames_done)


class Outcome(enum.StrEnum):
    """How a run of a job on a worker ended (a label of the worker's metrics too)."""

    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"
    REQUEUED = "requeued"  # the worker shut down: the job goes back to the front of the queue
    # Runs that record nothing (metrics only, never stored in a job):
    LOST = "lost"  # another worker owns the job now
    UNRECORDED = "unrecorded"  # Redis was unavailable; the job is recovered


@dataclass(frozen=True)
class JobOutcome:
    """What the worker decided about a failed run, stored in the job's meta (`outcome`)."""

    outcome: Outcome
    error: str | None = None  # the readable reason a failed job shows; None: internal error
    retry: bool = False  # a failed run: RQ may run the job again (its retries permitting)

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as stored in job meta."""
        return {"outcome": self.outcome.value, "error": self.error, "retry": self.retry}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> JobOutcome | None:
        """The outcome a worker stored in a job's meta, if any."""
        raw = meta.get("outcome")
        if not isinstance(raw, dict):
            return None
        return cls(Outcome(raw["outcome"]), raw.get("error"), bool(raw.get("retry", False)))


def time_limit_message(seconds: int | float | None) -> str:
    """The reason a job stopped by its time limit shows."""
    return f"The job ran past its time limit ({seconds} s) and was stopped."


def job_timeout(frames: int, base: float, per_frame: float) -> int:
    """Seconds a job with `frames` driving frames may run before RQ stops it."""
    return int(math.ceil(base + max(frames, 0) * per_frame))
