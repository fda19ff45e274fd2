"""Dashboard sessions: a signed, expiring token in an HttpOnly, SameSite=Strict cookie, so a
key is typed once into the login form and never stored in the browser.

Pure: the secret and the time are passed in. The token names who signed in (``master`` or a
virtual key id), never a key itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import orjson

COOKIE = "thrifty_ui"
LIFETIME_S = 8 * 3600
MASTER = "master"


def session_secret(master_key: bytes | None) -> bytes:
    """Derived from the master key, so every worker and replica accepts the same cookies and
    rotating the master key signs everyone out; random per process without one (read-key
    sessions then end when the process restarts)."""
    if master_key is None:
        return os.urandom(32)
    return hmac.new(master_key, b"thrifty-ui-session-v1", hashlib.sha256).digest()


def issue(secret: bytes, subject: str, now: float, lifetime_s: float = LIFETIME_S) -> str:
    payload = _b64(orjson.dumps({"sub": subject, "exp": int(now + lifetime_s)}))
    return f"{payload}.{_sign(secret, payload)}"


def verify(secret: bytes, token: str | None, now: float) -> str | None:
    """The subject of a valid, unexpired token; None for anything else."""
    if not token or token.count(".") != 1:
        return None
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature, _sign(secret, payload)):
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sub"), str):
        return None
    exp = data.get("exp")
    if not isinstance(exp, int) or exp <= now:
        return None
    return str(data["sub"])


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
