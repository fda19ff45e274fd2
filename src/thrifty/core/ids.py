"""Request ids: sortable by time, unique across processes, cheap to make."""

from __future__ import annotations

import os
import random
import time

_PREFIX = "thr-"
# A generator seeded from the OS once per process, not os.urandom per id: getrandom() is a
# syscall that drops the GIL, and on a busy server taking it back (behind the ledger's writer
# thread) cost ~5% of a request's CPU. Ids need uniqueness, not secrecy.
_rng = random.Random(os.urandom(16))
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(16)))  # workers diverge


def new_request_id() -> str:
    # 48 bits of milliseconds then 64 random bits, hex: sortable and collision-free enough
    # for a ledger key across replicas, and ~10x cheaper than uuid4().
    return f"{_PREFIX}{int(time.time() * 1000):012x}{_rng.getrandbits(64):016x}"
