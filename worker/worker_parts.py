"""`WorkerParts`: what an `MCNetWorker` is made of besides its queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.protocol import DEMO_MODEL
from core.settings import WorkerSettings
from core.storage import Storage
from worker.media.settings import MediaSettings
from worker.metrics import WorkerMetrics
from worker.webhooks import WebhookSender

if TYPE_CHECKING:
    from model.animator import Animator


@dataclass(frozen=True)
class WorkerParts:
    """What a worker is made of besides its queue: built by `mcnet worker`
    (worker.worker_main), or by tests."""

    animator: Animator
    storage: Storage
    metrics: WorkerMetrics
    settings: WorkerSettings
    media_settings: MediaSettings | None = None
    model: str = DEMO_MODEL  # the model's label (worker.model_loading.describe_model)
    webhooks: WebhookSender | None = None
    warmup: tuple[int, float] | None = None  # frames and seconds of worker.warmup, if run
