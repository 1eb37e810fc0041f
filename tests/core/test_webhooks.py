"""The webhook address policy and signature format (core.webhooks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress

import pytest

from core.errors import InvalidOptionsError
from core.webhooks import (
    WebhookEvent,
    WebhookTarget,
    address_allowed,
    message_type,
    parse_networks,
    resolve_checked,
    sign,
)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("240.0.0.1", False),
        ("100.64.0.1", False),
        ("100.100.100.200", False),
        ("192.88.99.1", False),
        ("fec0::1", False),
        ("2002:7f00:1::1", False),
        ("2002:a9fe:a9fe::1", False),
        ("2002:808:808::1", True),
        ("64:ff9b::a9fe:a9fe", False),
        ("64:ff9b::808:808", True),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),
        ("ff0e::1", False),
    ],
)
def test_only_public_addresses_by_default(address: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address), ()) is allowed


def test_the_allow_list_covers_embedded_addresses() -> None:
    networks = parse_networks(["127.0.0.0/8"])
    assert address_allowed(ipaddress.ip_address("2002:7f00:1::1"), networks)
    assert address_allowed(ipaddress.ip_address("64:ff9b::7f00:1"), networks)
    assert not address_allowed(ipaddress.ip_address("2002:a9fe:a9fe::1"), networks)


@pytest.mark.parametrize(
    ("event", "status", "kind"),
    [
        (WebhookEvent.STARTED, "started", "job.started"),
        (WebhookEvent.PROGRESS, "started", "job.progress"),
        (WebhookEvent.COMPLETED, "finished", "job.completed"),
        (WebhookEvent.COMPLETED, "failed", "job.failed"),
        (WebhookEvent.COMPLETED, "canceled", "job.canceled"),
    ],
)
def test_every_message_has_its_type(event: WebhookEvent, status: str, kind: str) -> None:
    assert message_type(event, status) == kind


@pytest.mark.parametrize("port", ["99999", "65536", "abc", "-1", "0"])
def test_an_invalid_port_is_an_invalid_option(port: str) -> None:
    with pytest.raises(InvalidOptionsError, match="port"):
        WebhookTarget.from_form(f"https://example.com:{port}/x", None)


def test_networks_the_operator_allows() -> None:
    networks = parse_networks(["127.0.0.0/8", "10.1.0.0/16"])
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), networks)
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.2"), networks)
    assert address_allowed(ipaddress.ip_address("10.1.2.3"), networks)
    assert not address_allowed(ipaddress.ip_address("10.2.0.1"), networks)
    with pytest.raises(InvalidOptionsError):
        resolve_checked("http://localhost:9/hook", parse_networks(["10.0.0.0/8"]))
    assert resolve_checked("http://127.0.0.1:9/x", networks) == [ipaddress.ip_address("127.0.0.1")]


def test_signature_is_hmac_sha256_of_id_timestamp_body() -> None:
    key = b"k" * 32
    signature = sign(key, "msg_1", 1700000000, b'{"a":1}')
    digest = hmac.new(key, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    assert signature == "v1," + base64.b64encode(digest).decode()


def test_target_from_form() -> None:
    assert WebhookTarget.from_form(None, None) is None
    target = WebhookTarget.from_form("https://example.com/h", None)
    assert target is not None and target.events == (WebhookEvent.COMPLETED,)
    target = WebhookTarget.from_form("https://example.com/h", "progress, started")
    assert target is not None
    assert target.events == (WebhookEvent.PROGRESS, WebhookEvent.STARTED)
    assert WebhookTarget.from_meta({"webhook": target.as_meta()}) == target
    for url, events in (("https://example.com/" + "x" * 300, None), (None, "started")):
        with pytest.raises(InvalidOptionsError):
            WebhookTarget.from_form(url, events)
