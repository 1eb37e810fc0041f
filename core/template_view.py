"""`TemplateView`: a motion template as everyone outside the worker sees it. One model for
the API's template JSON (POST /templates, GET /templates/{id}, the list) and the client
(core.client). Torch-free and server-free.

A template is made like a job: its driving video is uploaded, queued, and a worker
extracts the motion (core.template_format); the video is deleted once the template is made.
`status` uses the job's words: `finished` means the template is ready for `POST /animate`
with `template=<id>`.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from core.protocol import JobState, Progress


class TemplateLinks(BaseModel):
    """Where to go next."""

    self: str = Field(description="The template (GET), delete it (DELETE).")


class TemplateView(BaseModel):
    """A motion template: its state, the extraction's progress, its timing and size."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: JobState = Field(
        description="queued, started (being extracted), finished (ready to animate with), "
        "failed or canceled."
    )
    progress: Progress
    frames: int = Field(description="Frames of motion (the driving video's frames).")
    fps: float = Field(description="Frames per second of the driving video.")
    duration_seconds: float = Field(description="Length of the motion, in seconds.")
    has_audio: bool | None = Field(
        default=None, description="Whether the template carries the video's sound; null until made."
    )
    bytes: int | None = Field(
        default=None,
        description="Size of the stored template (counted against the key's template "
        "storage); null until made.",
    )
    created_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    expires_at: dt.datetime | None = Field(
        default=None, description="When the template is deleted (MCNET_TEMPLATE_TTL)."
    )
    error: str | None = Field(default=None, description="Why the extraction failed.")
    links: TemplateLinks | None = None

    @property
    def ready(self) -> bool:
        """Whether jobs can be animated from this template."""
        return self.status is JobState.FINISHED
