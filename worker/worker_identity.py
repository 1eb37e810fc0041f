"""Whose is a worker name: a name left by a worker that died is taken over, a live one
refused (`WorkerNameTakenError`); and whether a process on this host still runs."""

from __future__ import annotations

import os
import socket
from typing import Any

from worker.rq_internals import parse_utc, utc_now


class WorkerNameTakenError(Exception):
    """A live worker already uses this name."""


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def predecessor_gone(raw: dict[Any, Any], worker_ttl: int) -> bool:
    """Whether the worker registered as `raw` (its Redis hash) is gone: on this host, its
    process ended; elsewhere, no heartbeat for `worker_ttl` seconds."""
    old = {_text(k): _text(v) for k, v in raw.items()}
    host, pid = old.get("hostname", ""), old.get("pid", "")
    if host == socket.gethostname() and pid.isdigit():
        return int(pid) == os.getpid() or not pid_alive(int(pid))
    beat = old.get("last_heartbeat", "")
    try:
        age = (utc_now() - parse_utc(beat)).total_seconds()
    except ValueError:
        return True
    return age > worker_ttl
