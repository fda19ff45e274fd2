"""The virtual key: its record, its secret's format, and the hash it is stored under.

Pure values and functions: no storage and no clock reads (times are passed in). The plaintext
secret exists only in the create/rotate answer; everything kept is derived from its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Literal, TypeVar

KEY_PREFIX = "tk-"
SECRET_BYTES = 32
# token_urlsafe(32) is 43 base64url characters; a presented key of any other shape is rejected
# before it reaches the cache or the database.
KEY_LENGTH = len(KEY_PREFIX) + 43
DISPLAY_CHARS = 4
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

KeyStatus = Literal["active", "revoked", "expired"]
KeyRole = Literal["inference", "read"]
"""``inference``: calls the API (chat, models...). ``read``: signs in to the dashboard only;
the API refuses it, and the dashboard refuses inference keys."""
ROLES: tuple[KeyRole, ...] = ("inference", "read")
BudgetRule = Mapping[str, object]
"""One limit rule as a JSON object; ``thrifty.limits`` parses it, the key store only keeps it."""


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A gateway key as stored: never the secret, only its SHA-256 and a display prefix.

    Instances are shared by the request-path cache: treat ``metadata`` and ``budgets`` as
    read-only (they are typed as ``Mapping`` for that reason).
    """

    id: str
    prefix: str
    """``tk-`` and the first four characters of the secret: enough to tell keys apart in a
    list, 24 of 256 bits, so it gives an attacker nothing useful."""
    hash: str
    """Hex SHA-256 of the full plaintext key."""
    team: str
    name: str
    allowed_models: tuple[str, ...]
    """Requested model or alias names this key may call; empty means every name."""
    tags: tuple[str, ...]
    metadata: Mapping[str, str]
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    budgets: tuple[BudgetRule, ...]
    role: KeyRole = "inference"

    @property
    def display(self) -> str:
        return f"{self.prefix}…"

    def status(self, now: float) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def allows(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models

    def public(self, now: float) -> dict[str, object]:
        """The JSON view for the admin API and the CLI: everything but the hash."""
        return {
            "id": self.id,
            "prefix": self.display,
            "team": self.team,
            "name": self.name,
            "status": self.status(now),
            "allowed_models": list(self.allowed_models),
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "budgets": [dict(rule) for rule in self.budgets],
            "role": self.role,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


class Unset(Enum):
    """The type of ``UNSET``: a ``KeyPatch`` field that leaves the stored value alone."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True)
class KeyPatch:
    """The settings ``KeyStore.update`` may change. ``expires_at=None`` means "never expires",
    hence the sentinel. The team is fixed at creation: spend already recorded under a key would
    otherwise change team after the fact; create a new key instead."""

    name: str | Unset = UNSET
    allowed_models: tuple[str, ...] | Unset = UNSET
    tags: tuple[str, ...] | Unset = UNSET
    metadata: Mapping[str, str] | Unset = UNSET
    expires_at: float | Unset | None = UNSET
    budgets: tuple[BudgetRule, ...] | Unset = UNSET

    def apply(self, key: VirtualKey) -> VirtualKey:
        metadata = key.metadata if isinstance(self.metadata, Unset) else dict(self.metadata)
        return replace(
            key,
            name=key.name if isinstance(self.name, Unset) else self.name,
            allowed_models=_keep(self.allowed_models, key.allowed_models),
            tags=_keep(self.tags, key.tags),
            metadata=metadata,
            expires_at=key.expires_at if isinstance(self.expires_at, Unset) else self.expires_at,
            budgets=_keep(self.budgets, key.budgets),
        )


_T = TypeVar("_T")


def _keep(new: _T | Unset, old: _T) -> _T:
    return old if isinstance(new, Unset) else new


def new_secret() -> str:
    """A fresh plaintext key: ``tk-`` and 256 random bits, base64url."""
    return KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def new_key_id() -> str:
    # Not derived from the secret, so ids can be logged, put in URLs and kept across rotation.
    return "key_" + secrets.token_hex(8)


def hash_key(plaintext: str) -> str:
    """Hex SHA-256 of the full key. A plain fast hash is enough, and needed: the secret has 256
    random bits, so no dictionary exists for a slow KDF (bcrypt, argon2) to slow down, and a
    deterministic unsalted digest is what lets a presented key be found by an indexed lookup
    instead of checking every row (the same scheme GitHub and Stripe tokens use)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def display_prefix(plaintext: str) -> str:
    return plaintext[: len(KEY_PREFIX) + DISPLAY_CHARS]


def looks_like_key(presented: str) -> bool:
    """Whether ``presented`` has the shape of a virtual key (cheap; says nothing of validity)."""
    return (
        len(presented) == KEY_LENGTH
        and presented.startswith(KEY_PREFIX)
        and _URLSAFE.issuperset(presented[len(KEY_PREFIX):])
    )


def hashes_match(stored: str, computed: str) -> bool:
    """Constant-time comparison, so a lookup that found a row cannot leak timing about it."""
    return hmac.compare_digest(stored.encode(), computed.encode())


def build_key(
    plaintext: str,
    *,
    key_id: str,
    team: str,
    name: str,
    allowed_models: Sequence[str],
    tags: Sequence[str],
    metadata: Mapping[str, str] | None,
    created_at: float,
    expires_at: float | None,
    budgets: Sequence[BudgetRule],
    role: KeyRole = "inference",
) -> VirtualKey:
    """The record to store for a new ``plaintext`` (which is not kept in it)."""
    return VirtualKey(
        id=key_id,
        prefix=display_prefix(plaintext),
        hash=hash_key(plaintext),
        team=team,
        name=name,
        allowed_models=tuple(allowed_models),
        tags=tuple(tags),
        metadata=dict(metadata or {}),
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=None,
        budgets=tuple(dict(rule) for rule in budgets),
        role=role,
    )


def with_secret(key: VirtualKey, plaintext: str) -> VirtualKey:
    """``key`` re-keyed to a new secret (rotation): same id and settings, new hash and prefix."""
    return replace(key, prefix=display_prefix(plaintext), hash=hash_key(plaintext))


def iso(ts: float | None) -> str:
    """A timestamp for error messages and the CLI (UTC, seconds)."""
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
