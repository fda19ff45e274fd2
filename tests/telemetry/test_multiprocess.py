"""``thrifty serve --workers 2`` as a user runs it, in front of a ``thrifty fake-provider``
process: whichever worker answers ``/metrics``, the totals count every request either
worker served. Also the supervisor's shared directory: made before forking, emptied of a
previous run's files, removed when it was made here. Every process is stopped by PID."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import FAKE_KEYS
from tests.limits.test_two_replicas import free_port, wait_ready
from thrifty.telemetry import multiproc

from .promtext import samples, total

MASTER = "sk-master-multiproc-0123456789"
N_REQUESTS, CONCURRENCY = 120, 24


def spawn(tmp: Path, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (tmp / f"{name}.log").open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "thrifty.cli.main", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A fake provider and a two-worker gateway; yields its base URL and metrics dir."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("THRIFTY_MASTER_KEY", None)
    procs = []
    try:
        fake_port = free_port()
        procs.append(spawn(tmp_path, "fake", "fake-provider", "--wire", "openai", "--port",
                           str(fake_port), "--api-key", FAKE_KEYS["openai"], "--latency-ms",
                           "10", env=env))
        wait_ready(f"http://127.0.0.1:{fake_port}/_fake/stats", procs[0],
                   tmp_path / "fake.log")
        cfg = tmp_path / "thrifty.yaml"
        cfg.write_bytes(orjson.dumps({
            "providers": {"openai": {"base_url": f"http://127.0.0.1:{fake_port}/v1",
                                     "api_key": FAKE_KEYS["openai"]}},
            "ledger": {"path": str(tmp_path / "ledger.db")}}))
        metrics_dir = tmp_path / "metrics"
        env.update(THRIFTY_MASTER_KEY=MASTER, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        port = free_port()
        procs.append(spawn(tmp_path, "serve", "serve", "--config", str(cfg), "--port",
                           str(port), "--workers", "2", env=env))
        wait_ready(f"http://127.0.0.1:{port}/readyz", procs[1], tmp_path / "serve.log")
        yield f"http://127.0.0.1:{port}", metrics_dir
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


async def scrape_fresh(base: str) -> float:
    """Total requests as one worker reports them (a new connection each time, so the
    answering worker varies)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {MASTER}"}) as s, \
            s.get(f"{base}/metrics") as r:
        assert r.status == 200
        return total(samples(await r.text()), "thrifty_requests_total")


def requests_by_worker(metrics_dir: Path) -> dict[str, float]:
    """Per worker file: its own count of requests (what it wrote to the shared dir)."""
    out: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        n = sum(value for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))
                if orjson.loads(key)[1] == "thrifty_requests_total")
        out[path.stem] = n
    return out


async def test_metrics_total_every_workers_requests(served: tuple[str, Path]) -> None:
    base, metrics_dir = served
    body = {"model": "gpt-4o-mini", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hello"}]}
    sem = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, force_close=True)
    sent = 0
    async with aiohttp.ClientSession(connector=connector,
                                     headers={"Authorization": f"Bearer {MASTER}"}) as s:
        async def one() -> int:
            async with sem, s.post(f"{base}/v1/chat/completions", json=body) as r:
                await r.read()
                return r.status

        # /readyz answered by one worker says nothing of the other, which may still be
        # starting on a busy machine and miss a whole round: then another round
        for _ in range(5):
            statuses = await asyncio.gather(*(one() for _ in range(N_REQUESTS)))
            assert statuses == [200] * N_REQUESTS
            sent += N_REQUESTS
            seen = 0.0
            for _ in range(60):  # each worker flushes to the shared files once a second
                seen = await scrape_fresh(base)
                if seen >= sent:
                    break
                await asyncio.sleep(0.1)
            assert seen == sent
            by_worker = requests_by_worker(metrics_dir)
            if len(by_worker) == 2 and all(n > 0 for n in by_worker.values()):
                break
    for _ in range(6):  # and it stays exact whichever worker answers
        assert await scrape_fresh(base) == sent
    by_worker = requests_by_worker(metrics_dir)
    assert len(by_worker) == 2 and sum(by_worker.values()) == sent
    assert all(n > 0 for n in by_worker.values()), by_worker  # both workers served


def test_prepare_makes_and_removes_its_own_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(multiproc.ENV, raising=False)
    assert multiproc.prepare(1)() is None and multiproc.shared_dir() is None
    cleanup = multiproc.prepare(2)
    made = multiproc.shared_dir()
    assert made is not None and Path(made).is_dir()
    cleanup()
    assert not Path(made).exists() and multiproc.shared_dir() is None


def test_prepare_keeps_a_given_directory_but_drops_old_series(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old run")
    (given / "notes.txt").write_text("not ours")
    monkeypatch.setenv(multiproc.ENV, str(given))
    try:
        cleanup = multiproc.prepare(2)
        assert not (given / "counter_123.db").exists()
        cleanup()
        assert (given / "notes.txt").exists() and multiproc.shared_dir() == str(given)
    finally:
        monkeypatch.delenv(multiproc.ENV)
        multiproc._reload_value_class()
