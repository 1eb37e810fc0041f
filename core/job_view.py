"""`JobView`: a job as everyone outside the worker sees it. One model for the API's job
JSON (GET /jobs/{id}, the list, each progress event), the webhook body and the client
(core.client). Torch-free and server-free."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.protocol import JobState, Progress


class Links(BaseModel):
    """Where to go next."""

    self: str = Field(description="Status of the job (GET), cancel (DELETE).")
    result: str = Field(description="The MP4 once the job has finished.")
    events: str = Field(description="Server-Sent Events of the job's progress until it ends.")


class JobView(BaseModel):
    """A job: its state, progress, times, options and what its worker set. `result_url`
    and `links` are the API's (a webhook body carries `result_url` as a path, no links)."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: JobState = Field(description="queued, started, finished, failed or canceled.")
    progress: Progress
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    error: str | None = Field(default=None, description="Why the job failed or was canceled.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="The job's options, defaults filled in."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What the result should be looked at for, such as a driving crop grown "
        "to hold a head that moved far (smaller face, coarser detail).",
    )
    precision: str | None = Field(
        default=None,
        description="The numeric precision the worker animates with: fp32 (exact), bf16 or "
        "fp16; null until a worker has taken the job.",
    )
    result_url: str | None = Field(default=None, description="The MP4, once the job has finished.")
    model: str | None = Field(
        default=None,
        description="The model that runs the job, set by its worker when it starts: the "
        "checkpoint's file name and sha256 prefix, or `demo` (untrained demo weights: the face "
        "does not follow the driving video and the pasted-back crop shows as a soft rectangle).",
    )
    queue_position: int | None = Field(
        default=None,
        description="Place in the queue (1: next) while the job waits; null otherwise.",
    )
    estimated_seconds: float | None = Field(
        default=None,
        description="Seconds until the job should end while it waits or runs: the frames "
        "ahead of it and its own at the live workers' measured speed (a running job: at its "
        "own pace so far). Null once it has ended, or while no live worker has measured a "
        "speed.",
    )
    template: str | None = Field(
        default=None,
        description="The motion template the job animates with (POST /animate with "
        "`template`); null for a job from a driving video.",
    )
    links: Links | None = None

    @property
    def ended(self) -> bool:
        """Whether the job has finished, failed or been canceled."""
        return self.status.ended

    def webhook_json(self, message_type: str) -> bytes:
        """The body of a webhook: the job JSON without the API's links, `result_url` the
        result's path on the API once finished, and the message's `type` (job.started,
        job.progress, job.completed, job.failed, job.canceled)."""
        document = self.model_dump(mode="json", exclude={"links"})
        document["result_url"] = (
            f"/jobs/{self.id}/result" if self.status.value == "finished" else None
        )
        document["type"] = message_type
        return json.dumps(document, separators=(",", ":")).encode()
