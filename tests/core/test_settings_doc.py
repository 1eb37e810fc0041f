"""Every setting is reachable: docs/CONFIGURATION.md, .env.example and docker-compose.yml
name every variable the settings classes read (core.settings_doc lists them).

A failure says exactly what to add where; a new setting needs three edits:
`python -m core.settings_doc > docs/CONFIGURATION.md`, a line in .env.example, and (if a
compose service reads it) a line in docker-compose.yml's environment of that service.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

import core.settings
from core.settings_doc import (
    SERVICE_SETTINGS,
    SETTINGS_CLASSES,
    default_text,
    env_name,
    env_names,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "CONFIGURATION.md"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE = ROOT / "docker-compose.yml"

# Settings a compose service reads but whose environment does not name, and why.
NOT_IN_COMPOSE = {
    "MCNET_HEALTH_FILE": "set by the worker image (Dockerfile ENV), which its healthcheck reads",
    "MCNET_WORKER_NAME": "replicas of one service need different names: each makes its own",
}


def _settings_classes() -> set[type[BaseSettings]]:
    """Every pydantic-settings class declared in core.settings."""
    found = set()
    for value in vars(core.settings).values():
        if (
            isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.__module__ == core.settings.__name__
        ):
            found.add(value)
    return found


def _env_example_blocks() -> dict[str, tuple[str, str]]:
    """Each variable of .env.example: ("set" for `NAME=`, "fixed" for `# NAME=...`) and the
    comment block above it (the comment lines before its run of variables)."""
    found: dict[str, tuple[str, str]] = {}
    comment: list[str] = []
    in_vars = False
    for line in ENV_EXAMPLE.read_text().splitlines():
        fixed = re.match(r"^# ([A-Z][A-Z0-9_]*)=", line)
        variable = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if variable:
            found[variable.group(1)] = ("set", "\n".join(comment))
            in_vars = True
        elif fixed:
            found[fixed.group(1)] = ("fixed", line)
        elif line.startswith("#"):
            if in_vars:
                comment, in_vars = [], False
            comment.append(line)
        else:
            comment, in_vars = [], False
    return found


def _compose_environments() -> dict[str, dict[str, Any]]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return {name: dict(service.get("environment") or {}) for name, service in services.items()}


def test_every_setting_is_documented_in_env_example_and_passed_by_compose() -> None:
    problems: list[str] = []

    declared = _settings_classes()
    missing_classes = sorted(c.__name__ for c in declared - set(SETTINGS_CLASSES))
    if missing_classes:
        problems.append(
            f"core/settings_doc.py: add {', '.join(missing_classes)} to SETTINGS_CLASSES "
            "and give its fields a Section (and SERVICE_SETTINGS if a compose service reads it)"
        )

    if CONFIGURATION.read_text() != render():
        problems.append(
            "docs/CONFIGURATION.md is not what the settings say: run "
            "`python -m core.settings_doc > docs/CONFIGURATION.md`"
        )

    example = _env_example_blocks()
    compose_text = COMPOSE.read_text()
    of_services = {name for classes in SERVICE_SETTINGS.values() for name in env_names(classes)}
    for name, field in sorted(env_names(SETTINGS_CLASSES).items()):
        default = default_text(field)
        if name not in example:
            shown = f" ({default})" if default else ""
            problems.append(
                f".env.example: add `# {(field.description or '').rstrip('.')}{shown}` and "
                f"`{name}=` (or `# {name}=<value>` under 'set by docker-compose.yml' when "
                "the compose file fixes it)"
            )
            continue
        kind, comment = example[name]
        if kind == "set":
            if default and not re.search(rf"(?<![\w.]){re.escape(default)}(?![\w])", comment):
                problems.append(
                    f".env.example: the comment above `{name}=` must give its default "
                    f"({default}); it reads: {comment!r}"
                )
            passed = re.search(rf"\$\{{{name}(:?[-?]|\}})", compose_text)
            if name in of_services and not passed:
                problems.append(
                    f"docker-compose.yml: `{name}=` of .env.example reaches no service: pass "
                    f"`{name}: ${{{name}:-}}` in the environment of the services that read it"
                )

    environments = _compose_environments()
    for service, classes in SERVICE_SETTINGS.items():
        environment = environments.get(service, {})
        for name in sorted(env_names(classes)):
            if name not in environment and name not in NOT_IN_COMPOSE:
                problems.append(
                    f"docker-compose.yml: add `{name}: ${{{name}:-}}` to the environment of "
                    f"`{service}` (or, if the stack fixes it, `{name}: <value>` and "
                    f"`# {name}=<value>` in .env.example)"
                )

    assert not problems, "Settings not reachable:\n- " + "\n- ".join(problems)


def test_env_names_follow_the_settings_rule() -> None:
    # MCNET_<FIELD> unless an alias names the variable (REDIS_URL, STORAGE_URL, API_KEYS, ...)
    names = env_names(SETTINGS_CLASSES)
    assert {"REDIS_URL", "STORAGE_URL", "API_KEYS", "MCNET_MODEL_CONFIG"} <= set(names)
    field = core.settings.WorkerSettings.model_fields["encode_crf"]
    assert env_name("encode_crf", field) == "MCNET_ENCODE_CRF"
    assert default_text(field) == "18"
