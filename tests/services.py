"""Whether the real services the tests use (PostgreSQL, Redis) are up on 127.0.0.1: tests
that need one skip, with the reason, only when it is truly absent (CI starts them). And
free loopback ports for the servers the tests start themselves."""

from __future__ import annotations

import socket


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A 127.0.0.1 port free right now (bound, never listened on, closed): for a server a
    test is about to start, or as an address where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
