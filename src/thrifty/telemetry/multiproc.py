"""prometheus_client's multiprocess mode for ``thrifty serve --workers N``: each worker
writes its series to memory-mapped files in one shared directory, and whichever worker
answers ``/metrics`` sums them all. The supervisor prepares the directory before forking,
marks workers dead as they exit, and removes the directory when it made it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def shared_dir() -> str | None:
    """The directory workers write to, when multiprocess mode is on."""
    return os.environ.get(ENV) or None


def prepare(workers: int) -> Callable[[], None]:
    """Before forking ``workers`` workers: point prometheus_client at a fresh directory
    (only for more than one) and return the clean-up to run once they have all exited. A
    directory the operator set in ``PROMETHEUS_MULTIPROC_DIR`` is used whatever the count
    (emptied of old series files: they would add a previous run's counts) and kept; one
    made here is removed."""
    given = os.environ.get(ENV)
    if workers <= 1 and not given:
        return lambda: None
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
        made = None
    else:
        made = tempfile.mkdtemp(prefix="thrifty-metrics-")
        os.environ[ENV] = made
    _reload_value_class()

    def cleanup() -> None:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
            os.environ.pop(ENV, None)
            _reload_value_class()

    return cleanup


def mark_dead(pid: int) -> None:
    """A worker exited: drop its live-gauge files (counters and histograms stay counted)."""
    if shared_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _reload_value_class() -> None:
    # prometheus_client picks its value storage when first imported; if it already was,
    # pick again so metrics created after the fork use the shared files.
    import sys

    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
