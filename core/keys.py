"""API keys and the owners of jobs. Torch-free.

`API_KEYS` is a comma-separated list of `name:key` entries (or bare keys). The name is
what logs, metrics and Redis know a key by; the key itself is never stored or logged. A
bare key is named `key-` plus the first 12 hex digits of its SHA-256. Keys are compared
in constant time (hmac.compare_digest, against every configured key).

With no keys configured every caller is the one owner `ANONYMOUS`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

ANONYMOUS = "anonymous"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ApiKey:
    """One configured key: its public name and its secret."""

    name: str
    secret: bytes

    def __repr__(self) -> str:  # never show the secret
        return f"ApiKey(name={self.name!r})"


def parse_api_keys(entries: list[str]) -> tuple[ApiKey, ...]:
    """`name:key` or bare `key` entries -> ApiKeys. ValueError (one line) on a malformed
    name (letters, digits, `_.-`, up to 64), an empty key, a repeated name, or one secret
    under two names."""
    keys: list[ApiKey] = []
    for entry in entries:
        name, sep, secret = entry.partition(":")
        if not sep:
            secret = entry
            name = "key-" + hashlib.sha256(entry.encode()).hexdigest()[:12]
        elif not _NAME.match(name) or not secret:
            raise ValueError(
                f"API_KEYS: the entry named {name!r} must be name:key with a name of letters, "
                "digits, '_', '.' or '-' (at most 64) and a key after the colon"
            )
        keys.append(ApiKey(name, secret.encode()))
    names = [key.name for key in keys]
    if len(set(names)) != len(names):
        raise ValueError("API_KEYS: two keys have the same name (or the same key is repeated)")
    if len({key.secret for key in keys}) != len(keys):
        raise ValueError("API_KEYS: one key appears under two names; give each name its own key")
    return tuple(keys)


def match_key(given: bytes, keys: tuple[ApiKey, ...]) -> str | None:
    """The name of the key `given` is, or None; compares against every key in constant time."""
    found = None
    for key in keys:
        if hmac.compare_digest(given, key.secret):
            found = key.name
    return found
