"""Request ids: time-sortable, unique, and different in forked workers."""

from __future__ import annotations

import os
import re
import time

from thrifty.core.ids import new_request_id

_SHAPE = re.compile(r"thr-[0-9a-f]{28}")


def test_shape_and_uniqueness() -> None:
    ids = [new_request_id() for _ in range(20_000)]
    assert all(_SHAPE.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_sortable_by_time() -> None:
    first = new_request_id()
    time.sleep(0.003)
    assert new_request_id()[:16] > first[:16]  # the millisecond prefix moved on


def test_forked_workers_do_not_repeat_the_parents_sequence() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a pre-forked worker would hand out next
        os.write(w, ",".join(new_request_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    child = set(os.read(r, 1 << 16).decode().split(","))
    os.close(r)
    parent = {new_request_id() for _ in range(50)}
    assert len(child) == 50
    assert {c[16:] for c in child}.isdisjoint({p[16:] for p in parent})
