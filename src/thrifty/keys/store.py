"""The ``KeyStore`` Protocol: where virtual keys live (``SQLiteKeys``, ``PostgresKeys``).

A store keeps records and finds them by hash; it decides nothing about whether a key may be
used (``keys.cache.authenticate`` does) and never keeps a plaintext secret. The row layout the
SQL back ends share is here too, so both store a key the same way.

    store = SQLiteKeys("thrifty.db")
    key, secret = await store.create("search", name="ci", allowed_models=("cheap",))
    assert (await store.get_by_plaintext(secret)) == key   # ``secret`` is shown once
    key, secret = await store.rotate(key.id)               # the old secret stops working
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from thrifty.errors import InvalidRequest, NotFound
from thrifty.keys.model import ROLES, BudgetRule, KeyPatch, KeyRole, VirtualKey


class KeyStore(Protocol):
    async def create(
        self,
        team: str,
        *,
        name: str = "",
        allowed_models: Sequence[str] = (),
        tags: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
        expires_at: float | None = None,
        budgets: Sequence[BudgetRule] = (),
        role: KeyRole = "inference",
    ) -> tuple[VirtualKey, str]:
        """Make a key; returns its record and the plaintext, which is not stored anywhere."""

    async def get_by_plaintext(self, plaintext: str) -> VirtualKey | None:
        """The record whose hash matches ``plaintext`` (revoked and expired ones included, so
        the caller can say why a key fails), or ``None``."""

    async def get(self, key_id: str) -> VirtualKey:
        """The record with this id; ``NotFound`` if there is none."""

    async def list(
        self, team: str | None = None, *, include_revoked: bool = False
    ) -> Sequence[VirtualKey]:
        """Keys oldest first, optionally of one team; revoked ones only when asked."""

    async def rotate(self, key_id: str) -> tuple[VirtualKey, str]:
        """A new secret for the same id and settings; the old secret is invalid at once.
        ``NotFound`` for an unknown id, ``InvalidRequest`` for a revoked key."""

    async def revoke(self, key_id: str) -> VirtualKey:
        """Mark the key revoked (idempotent: a second call keeps the first time)."""

    async def update(self, key_id: str, patch: KeyPatch) -> VirtualKey:
        """Change the settings ``patch`` sets; ``InvalidRequest`` for a revoked key."""

    async def set_team_budgets(self, team: str, budgets: Sequence[BudgetRule]) -> None:
        """Replace a team's budgets (limit rules without scope; applied to the team)."""

    async def team_budgets(self, team: str) -> tuple[BudgetRule, ...]:
        """A team's budgets, () when none were set."""

    async def close(self) -> None: ...


def key_not_found(key_id: str) -> NotFound:
    return NotFound(f"No virtual key with id '{key_id}'", code="key_not_found")


def key_is_revoked(key: VirtualKey, action: str) -> InvalidRequest:
    return InvalidRequest(
        f"Virtual key '{key.id}' is revoked and cannot be {action}; create a new key instead",
        code="key_revoked",
    )


# Column order of ``key_row`` and ``key_from_row``; list-, dict- and rule-valued fields are JSON.
COLUMNS = ("id", "key_hash", "prefix", "team", "name", "allowed_models", "tags", "metadata",
           "budgets", "created_at", "expires_at", "revoked_at", "role")


def key_row(key: VirtualKey) -> tuple[str | float | None, ...]:
    return (
        key.id, key.hash, key.prefix, key.team, key.name,
        _dumps(list(key.allowed_models), "allowed_models"), _dumps(list(key.tags), "tags"),
        _dumps(dict(key.metadata), "metadata"),
        _dumps([dict(rule) for rule in key.budgets], "budgets"),
        key.created_at, key.expires_at, key.revoked_at, key.role,
    )


def key_from_row(row: Sequence[object]) -> VirtualKey:
    (key_id, key_hash, prefix, team, name, models, tags, metadata, budgets, created,
     expires, revoked, role) = row
    return VirtualKey(
        id=str(key_id),
        prefix=str(prefix),
        hash=str(key_hash),
        team=str(team),
        name=str(name),
        allowed_models=tuple(str(m) for m in _loads(models)),
        tags=tuple(str(t) for t in _loads(tags)),
        metadata={str(k): str(v) for k, v in _loads(metadata).items()},
        created_at=_number(created),
        expires_at=None if expires is None else _number(expires),
        revoked_at=None if revoked is None else _number(revoked),
        budgets=tuple(_loads(budgets)),
        role=_role(role),
    )


def _role(value: object) -> KeyRole:
    for role in ROLES:
        if value == role:
            return role
    raise TypeError(f"unknown key role {value!r} in the keys table")


def _dumps(value: object, field: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        raise InvalidRequest(f"'{field}' must hold JSON values only", param=field,
                             code="invalid_type") from None


def _loads(text: object) -> Any:
    # The column was written by ``key_row``: JSON text of the shape the field needs.
    return orjson.loads(text if isinstance(text, str | bytes) else str(text))


def _number(value: object) -> float:
    if not isinstance(value, int | float):
        raise TypeError(f"expected a number in the keys table, found {value!r}")
    return float(value)
