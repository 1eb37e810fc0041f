"""A value for every setting in `.env` reaches the process that reads it: docker-compose.yml
rendered by Compose v2 with a non-default value of each `NAME=` of .env.example, and each
service's rendered environment read by its settings class as the container would."""

from __future__ import annotations

import os
import re
import typing
from typing import Annotated, Any

import pytest
from pydantic import SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from core.settings_doc import SERVICE_SETTINGS, env_names
from tests.deploy.engine import COMPOSE_FILE, ENV_EXAMPLE, Compose

CHECKPOINT = "/srv/models/mcnet_vox256.pth.tar"
# Values of settings whose form a generic sample cannot guess.
SAMPLES = {
    "STORAGE_URL": "s3://results/prod",
    "MCNET_S3_ENDPOINT_URL": "http://minio:9000",
    "MCNET_WEBHOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "MCNET_WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8,192.168.0.0/16",
    "API_KEYS": "alice:key-alice,bob:key-bob",
    "MCNET_HEARTBEAT_INTERVAL": "4",  # the lease must outlive two heartbeats
    "MCNET_LEASE_TTL": "30",
}


def _valid(field: FieldInfo, text: str) -> bool:
    kind: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    try:
        TypeAdapter(kind).validate_strings(text)
    except (ValidationError, TypeError, ValueError):
        return False
    return True


def _sample(name: str, field: FieldInfo) -> str:
    """A valid value of the field that differs from its default."""
    if name in SAMPLES:
        return SAMPLES[name]
    default = field.get_default(call_default_factory=True)
    choices = [a for a in typing.get_args(field.annotation) if isinstance(a, str)]
    candidates: list[str] = []
    if isinstance(default, bool):
        candidates = [str(not default).lower()]
    elif choices:
        candidates = [choice for choice in choices if choice != default]
    elif isinstance(default, int):
        candidates = [str(default + 1), str(default - 1)]
    elif isinstance(default, float):
        candidates = [str(default * 2), str(default / 2)]
    else:
        candidates = ["7", "/srv/sample", "sample"]
    for candidate in candidates:
        if _valid(field, candidate):
            return candidate
    raise AssertionError(f"no sample value for {name}: add one to SAMPLES")


def _from_env(cls: type[BaseSettings], env: dict[str, Any], mp: pytest.MonkeyPatch) -> Any:
    for key in list(os.environ):
        mp.delenv(key)
    for key, value in env.items():
        mp.setenv(key, "" if value is None else str(value))
    return cls()


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.mark.parametrize("service", sorted(SERVICE_SETTINGS))
def test_a_value_of_every_setting_in_env_reaches_the_service(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_env_file = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.M))
    cls = SERVICE_SETTINGS[service][0]
    fields = {
        name: field
        for name, field in env_names((cls,)).items()
        if name in in_env_file and name != "MCNET_CHECKPOINT"  # a host path there
    }
    values = {name: _sample(name, field) for name, field in fields.items()}
    rendered = Compose("mcnet", [COMPOSE_FILE], {**values, "MCNET_CHECKPOINT": CHECKPOINT})
    environment = rendered.config()["services"][service]["environment"]
    with monkeypatch.context() as mp:
        inside = _from_env(cls, environment, mp)
    with monkeypatch.context() as mp:
        meant = _from_env(cls, values, mp)
    with monkeypatch.context() as mp:
        default = _from_env(cls, {}, mp)
    lost = []
    for name, field in fields.items():
        attribute = next(k for k, f in cls.model_fields.items() if f is field)
        got, want = _plain(getattr(inside, attribute)), _plain(getattr(meant, attribute))
        if got != want or want == _plain(getattr(default, attribute)):
            lost.append(f"{name}={values[name]!r}: {service} reads {got!r}")
    assert not lost, "Settings of .env that do not reach the service:\n" + "\n".join(lost)
