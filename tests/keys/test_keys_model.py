"""The pure key model: secret format, hashing, display prefix, status, patches, public view."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from thrifty.keys.model import (
    KEY_LENGTH,
    UNSET,
    KeyPatch,
    VirtualKey,
    build_key,
    hash_key,
    hashes_match,
    looks_like_key,
    new_key_id,
    new_secret,
    with_secret,
)

NOW = 1_714_608_000.0


def make(secret: str, **overrides: object) -> VirtualKey:
    fields: dict[str, object] = {
        "key_id": "key_0123456789abcdef", "team": "search", "name": "ci",
        "allowed_models": ["cheap"], "tags": ["prod"], "metadata": {"owner": "ana"},
        "created_at": NOW, "expires_at": NOW + 60, "budgets": [{"limit": 5}],
    }
    fields.update(overrides)
    return build_key(secret, **fields)  # type: ignore[arg-type]


def test_secrets_are_long_random_and_well_formed() -> None:
    made = {new_secret() for _ in range(1_000)}
    assert len(made) == 1_000
    for s in made:
        assert s.startswith("tk-") and len(s) == KEY_LENGTH == 46 and looks_like_key(s)
    assert len({new_key_id() for _ in range(1_000)}) == 1_000


@pytest.mark.parametrize("bad", ["", "tk-", "tk-" + "a" * 42, "tk-" + "a" * 44,
                                 "sk-" + "a" * 43, "tk-" + "a" * 42 + "=", "tk-" + "é" * 43])
def test_looks_like_key_refuses_other_shapes(bad: str) -> None:
    assert not looks_like_key(bad)


def test_the_record_holds_the_hash_not_the_secret() -> None:
    secret = new_secret()
    key = make(secret)
    assert key.hash == hashlib.sha256(secret.encode()).hexdigest() == hash_key(secret)
    assert secret not in repr(key) and secret[3:] not in repr(key)
    assert key.prefix == secret[:7] and key.display == f"{secret[:7]}…"
    assert hashes_match(key.hash, hash_key(secret))
    assert not hashes_match(key.hash, hash_key(new_secret()))


def test_status() -> None:
    key = make(new_secret())
    assert key.status(NOW + 59.999) == "active"
    assert key.status(NOW + 60) == "expired"
    never = make(new_secret(), expires_at=None)
    assert never.status(NOW + 10**9) == "active"
    assert KeyPatch(expires_at=None).apply(key).status(NOW + 10**9) == "active"
    revoked = replace(key, revoked_at=NOW)
    assert revoked.status(NOW - 1) == "revoked"  # revocation outranks everything else


def test_allows() -> None:
    assert make(new_secret(), allowed_models=[]).allows("anything")
    key = make(new_secret())
    assert key.allows("cheap") and not key.allows("Cheap") and not key.allows("gpt-4o")


def test_patch_changes_only_what_it_sets() -> None:
    key = make(new_secret())
    assert KeyPatch().apply(key) == key
    changed = KeyPatch(name="new", tags=(), expires_at=None).apply(key)
    assert (changed.name, changed.tags, changed.expires_at) == ("new", (), None)
    assert changed.allowed_models == key.allowed_models and changed.hash == key.hash
    assert KeyPatch(metadata=UNSET).apply(key).metadata == {"owner": "ana"}


def test_rotation_keeps_everything_but_the_secret() -> None:
    key = make(new_secret())
    secret = new_secret()
    rotated = with_secret(key, secret)
    assert rotated.hash == hash_key(secret) and rotated.prefix == secret[:7]
    assert (rotated.id, rotated.team, rotated.budgets) == (key.id, key.team, key.budgets)


def test_public_view_has_no_hash() -> None:
    key = make(new_secret())
    view = key.public(NOW)
    assert "hash" not in view and key.hash not in str(view)
    assert view["prefix"] == key.display and view["status"] == "active"
    assert view["allowed_models"] == ["cheap"] and view["budgets"] == [{"limit": 5}]
