"""Webhook delivery from the worker, off the frame loop.

`WebhookSender` owns one background thread and a bounded queue: the job's code only
enqueues (never waits on a receiver), a full queue drops the message (counted). The
thread reads the job's JSON from Redis when a message is first sent, signs it
(core.webhooks), resolves and checks the receiver's address, connects to that very
address (no second lookup, no redirects followed), and retries failures with doubling
backoff up to `attempts` tries; retries wait in a heap, so one slow receiver delays no
other message longer than its timeout. Outcomes are counted in
`mcnet_worker_webhooks_total{event,outcome}`.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import logging
import queue
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job

from core.errors import JobNotFoundError
from core.jobs import JobQueue
from core.logs import log_field, log_fields
from core.protocol import Progress
from core.settings import WorkerSettings
from core.webhooks import (
    Address,
    Network,
    WebhookAddressError,
    WebhookEvent,
    WebhookTarget,
    parse_networks,
    resolve_checked,
    secret_bytes,
    sign,
)
from worker.metrics import WorkerMetrics

logger = logging.getLogger(__name__)


@dataclass(order=True)
class _Message:
    due: float
    seq: int
    job_id: str = field(compare=False)
    event: WebhookEvent = field(compare=False)
    target: WebhookTarget = field(compare=False)
    message_id: str = field(compare=False, default_factory=lambda: f"msg_{uuid.uuid4().hex}")
    attempt: int = field(compare=False, default=0)
    body: bytes | None = field(compare=False, default=None)
    request_id: str | None = field(compare=False, default=None)  # of the job's submit


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a checked address, with the URL's host in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is checked against the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


class WebhookSender:
    """Signs and posts webhooks from one background thread."""

    def __init__(
        self,
        jobs: JobQueue,
        key: bytes,
        allowed: tuple[Network, ...],
        metrics: WorkerMetrics,
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        timeout: float = 10.0,
        progress_interval: float = 2.0,
        queue_size: int = 1000,
    ) -> None:
        self.jobs = jobs
        self.key = key
        self.allowed = allowed
        self.metrics = metrics
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.progress_interval = progress_interval
        self._inbox: queue.Queue[_Message] = queue.Queue(maxsize=queue_size)
        self._retries: list[_Message] = []
        self._seq = itertools.count()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread.start()

    def close(self, grace: float) -> None:
        """Stop taking messages; deliver what is due within `grace` seconds, drop the rest."""
        self._closing.set()
        self._thread.join(grace)

    def send(self, job_id: str, event: WebhookEvent, target: WebhookTarget) -> None:
        """Queue one message (never blocks); dropped and counted when the queue is full."""
        if event not in target.events or self._closing.is_set():
            return
        message = _Message(
            time.monotonic(), next(self._seq), job_id, event, target,
            request_id=log_field("request_id"),
        )  # fmt: skip
        try:
            self._inbox.put_nowait(message)
        except queue.Full:
            logger.warning("webhook of job %s (%s) dropped: the queue is full", job_id, event)
            self._count(message, "dropped")

    # the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        deadline: float | None = None
        while True:
            if self._closing.is_set() and deadline is None:
                deadline = time.monotonic() + self.timeout
            now = time.monotonic()
            if deadline is not None and (now > deadline or self._idle()):
                return
            wait = 0.2 if not self._retries else max(0.0, min(0.2, self._retries[0].due - now))
            try:
                self._deliver(self._inbox.get(timeout=wait))
            except queue.Empty:
                pass
            while self._retries and self._retries[0].due <= time.monotonic():
                self._deliver(heapq.heappop(self._retries))

    def _idle(self) -> bool:
        return self._inbox.empty() and not self._retries

    def _deliver(self, message: _Message) -> None:
        with log_fields(job_id=message.job_id, request_id=message.request_id):
            self._deliver_now(message)

    def _deliver_now(self, message: _Message) -> None:
        if message.body is None:
            try:
                info = self.jobs.info(message.job_id)
            except (JobNotFoundError, RedisError) as exc:
                logger.warning("webhook of job %s not sent: %s", message.job_id, exc)
                self._count(message, "failed")
                return
            if message.event is WebhookEvent.COMPLETED and not info.ended:
                self._count(message, "skipped")  # it goes back to the queue (retry, shutdown)
                return
            message.body = info.webhook_json()
        message.attempt += 1
        try:
            address = resolve_checked(message.target.url, self.allowed)[0]
            status: int | str = self._post(message, address)
        except WebhookAddressError as exc:
            logger.info("webhook of job %s refused: %s", message.job_id, exc)
            self._count(message, "refused")
            return
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
        if isinstance(status, int) and 200 <= status < 300:
            self._count(message, "delivered")
            return
        if message.attempt >= self.attempts:
            logger.warning(
                "webhook of job %s (%s) given up after %d tries (last: %s)",
                message.job_id, message.event, message.attempt, status,
            )  # fmt: skip
            self._count(message, "failed")
            return
        self._count(message, "retried")
        message.due = time.monotonic() + self.backoff * 2 ** (message.attempt - 1)
        heapq.heappush(self._retries, message)

    def _post(self, message: _Message, address: Address) -> int:
        body = message.body or b""
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mcnet-webhooks",
            "webhook-id": message.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.key, message.message_id, timestamp, body),
        }
        if message.request_id:
            headers["X-Request-ID"] = message.request_id
        parts = urlsplit(message.target.url)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kind = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
        connection = kind(parts.hostname or "", port, str(address), self.timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(64 * 1024)
            return response.status
        finally:
            connection.close()

    def _count(self, message: _Message, outcome: str) -> None:
        self.metrics.webhooks.labels(message.event.value, outcome).inc()


class JobWebhooks:
    """The webhooks of one run of a job: started, progress (throttled), completed."""

    def __init__(self, sender: WebhookSender | None, job_id: str, target: WebhookTarget | None):
        self.sender = sender
        self.job_id = job_id
        self.target = target
        self._last_progress: float | None = None  # None: `started` not sent yet

    def _send(self, event: WebhookEvent) -> None:
        if self.sender is not None and self.target is not None:
            self.sender.send(self.job_id, event, self.target)

    def progress(self, progress: Progress) -> None:
        """The job's progress was written: the first time, `started` (the job shows as
        started by then); later `progress`, at most every `progress_interval` seconds."""
        if self.sender is None or self.target is None:
            return
        now = time.monotonic()
        if self._last_progress is None:
            self._last_progress = now
            self._send(WebhookEvent.STARTED)
        elif now - self._last_progress >= self.sender.progress_interval:
            self._last_progress = now
            self._send(WebhookEvent.PROGRESS)

    def completed(self) -> None:
        """The run ended (sent only if the job ended, not when it goes back to the queue)."""
        self._send(WebhookEvent.COMPLETED)


def job_webhooks(sender: WebhookSender | None, job: Job) -> JobWebhooks:
    """The hooks of a run of `job`; no-ops without a sender or a webhook."""
    target = WebhookTarget.from_meta(job.meta or {}) if sender is not None else None
    return JobWebhooks(sender, job.id, target)


def webhook_sender(
    settings: WorkerSettings, connection: Redis, metrics: WorkerMetrics
) -> WebhookSender | None:
    """The worker's started sender, or None when no webhook secret is configured."""
    if settings.webhook_secret is None:
        return None
    sender = WebhookSender(
        JobQueue(connection, settings),
        secret_bytes(settings.webhook_secret.get_secret_value()),
        parse_networks(settings.webhook_allowed_networks),
        metrics,
        attempts=settings.webhook_attempts,
        backoff=settings.webhook_backoff,
        timeout=settings.webhook_timeout,
        progress_interval=settings.webhook_progress_interval,
    )
    sender.start()
    return sender
