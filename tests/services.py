"""Whether the real services the tests use (PostgreSQL, Redis) are up on 127.0.0.1: tests
that need one skip, with the reason, only when it is truly absent (CI starts them)."""

from __future__ import annotations

import socket


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
