"""Webhooks: what a job asks for, where they may go, how they are signed. Torch-free.

A job may name a `webhook` URL and the `webhook_events` it wants (`started`,
`progress`, `completed`); the worker posts the job's JSON (the fields of GET /jobs/{id}
without `links`, `result_url` a path on the API) with the message's `type` (job.started,
job.progress, job.completed, job.failed, job.canceled), signed the Standard Webhooks way:

    webhook-id: msg_<random>           (the same on every retry of one message)
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">

keyed with the deployment's secret (`MCNET_WEBHOOK_SECRET`, `whsec_` + base64).
Webhooks go only to globally routable addresses (nor to an IPv6 address embedding a
non-global IPv4: 6to4, Teredo, NAT64) unless the operator allows the networks
(`MCNET_WEBHOOK_ALLOWED_NETWORKS`);
the host is resolved and every address checked, at submit and again at each delivery
(which then connects to the address that was checked).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import InvalidOptionsError

SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 256
WEBHOOK_FIELDS = frozenset({"webhook", "webhook_events"})  # form fields of POST /animate

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookEvent(enum.StrEnum):
    """When a job's webhook is called."""

    STARTED = "started"  # a worker took the job
    PROGRESS = "progress"  # a stage or frames moved on (at most every few seconds)
    COMPLETED = "completed"  # the job ended: finished, failed or canceled


# The `type` of a message (Standard Webhooks): by event, and for `completed` by how it ended
STARTED_TYPE, PROGRESS_TYPE = "job.started", "job.progress"
ENDED_TYPES = {"finished": "job.completed", "failed": "job.failed", "canceled": "job.canceled"}
# Jobs that ended without a worker running them (canceled while queued): their ids wait in
# this Redis list (per queue) for a worker's webhook sender to send their `completed`.
OUTBOX_PREFIX = "mcnet:webhook-outbox:"


def message_type(event: WebhookEvent, status: str) -> str:
    """The message's `type`: job.started, job.progress, or job.completed / job.failed /
    job.canceled for the end of a job (its `status`)."""
    if event is WebhookEvent.STARTED:
        return STARTED_TYPE
    if event is WebhookEvent.PROGRESS:
        return PROGRESS_TYPE
    return ENDED_TYPES.get(status, "job.completed")


def outbox_key(queue_name: str) -> str:
    """Redis list of job ids whose `completed` webhook a worker should send."""
    return OUTBOX_PREFIX + queue_name


class WebhookTarget(BaseModel):
    """The webhook fields of POST /animate, kept in the job's meta (`webhook`)."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(max_length=MAX_URL_LENGTH)
    events: tuple[WebhookEvent, ...] = (WebhookEvent.COMPLETED,)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("webhook must not carry a user name or password")
        try:
            port = parts.port  # ValueError when not a number from 0 to 65535
        except ValueError as exc:
            raise ValueError("webhook has an invalid port") from exc
        if port == 0:
            raise ValueError("webhook has an invalid port")
        return value

    @classmethod
    def from_form(cls, url: str | None, events: str | None) -> WebhookTarget | None:
        """From the form fields `webhook` and `webhook_events` (comma-separated)."""
        if url is None:
            if events is not None:
                raise InvalidOptionsError("Invalid options: webhook_events needs a webhook URL.")
            return None
        values: dict[str, Any] = {"url": url.strip()}
        if events is not None:
            values["events"] = tuple(e.strip() for e in events.split(",") if e.strip())
        try:
            return cls.model_validate(values)
        except ValueError as exc:
            allowed = ", ".join(e.value for e in WebhookEvent)
            raise InvalidOptionsError(
                f"Invalid options: webhook must be an http(s) URL of at most {MAX_URL_LENGTH} "
                "characters with a port from 1 to 65535 if any, webhook_events a "
                f"comma-separated list of {allowed}."
            ) from exc

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> WebhookTarget | None:
        """The target stored in a job's meta, if any."""
        raw = meta.get("webhook")
        return cls.model_validate(raw) if isinstance(raw, dict) else None

    def as_meta(self) -> dict[str, Any]:
        """JSON form, as stored in job meta."""
        return self.model_dump(mode="json")


class WebhookAddressError(InvalidOptionsError):
    """The webhook's host resolves to an address this deployment does not call."""


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """CIDR strings -> networks (ValueError when malformed)."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


# Not globally routable although `is_global` says so on some Pythons: the 6to4 relay
# anycast, deprecated site-local IPv6, local-use NAT64.
_NOT_GLOBAL = (
    ipaddress.ip_network("192.88.99.0/24"),
    ipaddress.ip_network("fec0::/10"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 one carries: mapped, 6to4, Teredo (server and client),
    NAT64 (64:ff9b::/96); none for an IPv4 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        found += list(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


def _global(address: Address) -> bool:
    return (
        address.is_global
        and not address.is_multicast
        and not any(address in network for network in _NOT_GLOBAL)
    )


def address_allowed(address: Address, allowed: Sequence[Network]) -> bool:
    """Whether a webhook may go to `address`: one in the operator's `allowed` networks
    (itself or the IPv4 it embeds), else only a globally routable one whose embedded
    IPv4 addresses (6to4, Teredo, NAT64, mapped) are globally routable too."""
    embedded = embedded_ipv4(address)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(a in network for a in (address, *embedded) for network in allowed):
        return True
    return _global(address) and all(_global(a) for a in embedded)


def resolve_checked(url: str, allowed: Sequence[Network]) -> list[Address]:
    """The addresses of the URL's host, every one allowed; WebhookAddressError otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookAddressError(
            f"Invalid options: the webhook host {host!r} cannot be resolved."
        ) from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [str(a) for a in addresses if not address_allowed(a, allowed)]
    if refused or not addresses:
        raise WebhookAddressError(
            f"Invalid options: the webhook host {host!r} resolves to an address this service "
            f"does not call ({', '.join(refused) or 'none'}): use a public address."
        )
    return list(dict.fromkeys(addresses))


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (ValueError when malformed)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"the webhook secret must start with {SECRET_PREFIX!r}")
    key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    if len(key) < 16:
        raise ValueError("the webhook secret must hold at least 16 random bytes")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 of "id.timestamp.body"."""
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
