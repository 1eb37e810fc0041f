"""API keys: names, bare keys, constant-time matching (core.keys)."""

from __future__ import annotations

import hashlib

import pytest

from core.keys import match_key, parse_api_keys


def test_named_and_bare_keys() -> None:
    keys = parse_api_keys(["shop:s3cret", "plain-key", "other:x:y"])
    bare = "key-" + hashlib.sha256(b"plain-key").hexdigest()[:12]
    assert [key.name for key in keys] == ["shop", bare, "other"]
    assert match_key(b"s3cret", keys) == "shop"
    assert match_key(b"plain-key", keys) == bare
    assert match_key(b"x:y", keys) == "other"
    assert match_key(b"shop:s3cret", keys) is None and match_key(b"", keys) is None
    assert "s3cret" not in repr(keys)


def test_a_name_or_key_given_twice_or_a_malformed_name_is_refused() -> None:
    for entries in (
        ["a:one", "a:two"],
        ["same", "same"],
        ["a:one", "b:one"],  # one secret, two names
        ["one", "b:one"],
        ["bad name:x"],  # a space in the name
        ["shop:"],
    ):
        with pytest.raises(ValueError):
            parse_api_keys(entries)
