"""Virtual keys: gateway keys stored only as hashes, per team, with allowed models, expiry
and budget rules. The request path uses ``KeyCache`` + ``authenticate``/``authorize_model``;
admins use a ``KeyStore`` (``SQLiteKeys``, ``PostgresKeys``) through the admin API or CLI."""

from thrifty.keys.cache import KeyCache, authenticate, authorize_model, presented_key
from thrifty.keys.model import UNSET, BudgetRule, KeyPatch, KeyStatus, VirtualKey
from thrifty.keys.postgres_keys import PostgresKeys
from thrifty.keys.sqlite_keys import SQLiteKeys
from thrifty.keys.store import KeyStore

__all__ = [
    "UNSET",
    "BudgetRule",
    "KeyCache",
    "KeyPatch",
    "KeyStatus",
    "KeyStore",
    "PostgresKeys",
    "SQLiteKeys",
    "VirtualKey",
    "authenticate",
    "authorize_model",
    "presented_key",
]
