"""`thrifty serve` as a user runs it: a real process (two workers sharing one socket) in
front of a `thrifty fake-provider` process; the ledger is flushed on SIGTERM; listening
beyond loopback needs a master key."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI
from tests.conftest import FAKE_KEYS
from tests.services import free_port


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    import urllib.request

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


def thrifty(*args: str, **kw: object) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("THRIFTY_MASTER_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "thrifty.cli.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]


@pytest.fixture
def fake_process() -> Iterator[int]:
    port = free_port()
    proc = thrifty("fake-provider", "--wire", "openai", "--port", str(port),
                   "--api-key", FAKE_KEYS["openai"])
    wait_ready(f"http://127.0.0.1:{port}/_fake/stats", proc)
    yield port
    proc.terminate()
    proc.wait(10)


def test_serve_two_workers_then_sigterm_flushes_the_ledger(
    fake_process: int, tmp_path: Path
) -> None:
    db = tmp_path / "ledger.db"
    cfg = tmp_path / "thrifty.yaml"
    cfg.write_text(
        "providers:\n  openai:\n"
        f"    base_url: http://127.0.0.1:{fake_process}/v1\n"
        "    api_key: ${FAKE_OPENAI_KEY}\n"
        f"ledger:\n  path: {db}\n")
    port = free_port()
    env_key = {"FAKE_OPENAI_KEY": FAKE_KEYS["openai"]}
    os.environ.update(env_key)
    try:
        proc = thrifty("serve", "--config", str(cfg), "--port", str(port), "--workers", "2")
    finally:
        os.environ.pop("FAKE_OPENAI_KEY")
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        for i in range(20):
            r = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"echo: n{i}"}])
            assert r.choices[0].message.content == f"n{i}"
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert b"2 worker(s)" in err and b"openai" in err
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT status, cost_nano_usd FROM requests").fetchall()
    finally:
        con.close()
    assert len(rows) == 20 and all(s == 200 and c > 0 for s, c in rows)


def test_non_loopback_host_requires_a_master_key(tmp_path: Path) -> None:
    proc = thrifty("serve", "--host", "0.0.0.0", "--port", str(free_port()), cwd=tmp_path)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert b"THRIFTY_MASTER_KEY" in err


def test_check_config_reports_errors_and_success(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  prot: 1\n")
    proc = thrifty("check-config", str(bad))
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2 and b"server.prot" in err
    good = tmp_path / "good.yaml"
    good.write_text("providers:\n  local:\n    vendor: ollama\n"
                    "models:\n  llama:\n    provider: local\n    price: 0\n")
    proc = thrifty("check-config", str(good))
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and b"1 provider(s)" in out
