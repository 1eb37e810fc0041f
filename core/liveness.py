"""Which workers of a queue are alive, what model each runs, and whether it takes jobs.

Each worker announces itself every heartbeat interval from a thread of its own: a key
`mcnet:alive:<queue>:<name>` holding its model label and, when it cannot take jobs, why
(`problem`), that expires `ttl` seconds after the last announcement; the names are kept
in the set `mcnet:workers:<queue>`. A killed worker thus stops counting `ttl` seconds
after its last announcement, whatever RQ's own (much longer) worker TTL; a paused one
counts again, with its model label, as soon as it announces itself again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis import Redis

ALIVE_PREFIX = "mcnet:alive:"
WORKERS_PREFIX = "mcnet:workers:"

# KEYS: the set of names. ARGV: the prefix of the alive keys. Returns name, value pairs of
# the live workers and drops the names whose key has expired, in one step.
_LIVE = """
local found = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local value = redis.call('GET', ARGV[1] .. name)
  if value then
    table.insert(found, name)
    table.insert(found, value)
  else
    redis.call('SREM', KEYS[1], name)
  end
end
return found
"""


@dataclass(frozen=True)
class WorkerState:
    """What one live worker announced."""

    name: str
    model: str  # checkpoint name and sha256 prefix, or "demo"
    problem: str | None = None  # why it takes no jobs now; None: it takes jobs

    def dumps(self) -> str:
        """The value stored in the worker's alive key."""
        return json.dumps({"model": self.model, "problem": self.problem})


def alive_key(queue: str, name: str) -> str:
    """Redis key of one worker's announcement."""
    return f"{ALIVE_PREFIX}{queue}:{name}"


def workers_key(queue: str) -> str:
    """Redis key of the set of the queue's worker names."""
    return WORKERS_PREFIX + queue


def announce(connection: Redis, queue: str, state: WorkerState, ttl: float) -> None:
    """Say `state` for `ttl` seconds (called again before it lapses)."""
    with connection.pipeline(transaction=True) as pipe:
        pipe.sadd(workers_key(queue), state.name)
        pipe.set(alive_key(queue, state.name), state.dumps(), px=max(1, int(ttl * 1000)))
        pipe.execute()


def withdraw(connection: Redis, queue: str, name: str) -> None:
    """Stop counting the worker `name` at once (it exits)."""
    with connection.pipeline(transaction=True) as pipe:
        pipe.srem(workers_key(queue), name)
        pipe.delete(alive_key(queue, name))
        pipe.execute()


def live_workers(connection: Redis, queue: str) -> list[WorkerState]:
    """The workers of `queue` whose last announcement has not lapsed, by name."""
    raw: Any = connection.eval(_LIVE, 1, workers_key(queue), f"{ALIVE_PREFIX}{queue}:")
    states = []
    for name, value in zip(raw[::2], raw[1::2], strict=True):
        try:
            fields = json.loads(value)
        except ValueError:
            fields = {}
        if not isinstance(fields, dict):
            fields = {}
        problem = fields.get("problem")
        states.append(
            WorkerState(
                name=name.decode() if isinstance(name, bytes) else str(name),
                model=str(fields.get("model") or "unknown"),
                problem=str(problem) if problem else None,
            )
        )
    return sorted(states, key=lambda state: state.name)
