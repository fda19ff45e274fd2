"""Process plumbing shared by vs_litellm.py, soak.py and stream_timing.py: free ports,
starting `thrifty serve` / the fast mock / the bare proxy pinned to a CPU, waiting until they
answer, reading their CPU and RSS from /proc, and stopping exactly what was started, by PID.

Loopback only. Not a library: imported by the scripts next to it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "configs" / "harness.yaml"
SHARED_BENCH = Path(os.environ.get("SHARED_BENCH", "/work/shared/bench"))
BENCH_PY = Path(os.environ.get("BENCH_PY", "/tmp/bench-venv/bin/python"))
"""The shared harness's venv (mock upstream, bare proxies); made by its setup.sh."""
CHAT = "/v1/chat/completions"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpus() -> tuple[set[int] | None, set[int] | None]:
    """(gateway CPUs, load generator + upstream CPUs), split like the shared harness does:
    the last CPU for the load, the others for the gateway; None, None on one CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return set(allowed[:-1]), {allowed[-1]}


def thrifty_argv() -> list[str]:
    script = Path(sys.executable).with_name("thrifty")
    return [str(script)] if script.exists() else [sys.executable, "-m", "thrifty.cli.main"]


class Proc:
    """A process (and its children) this script started; stopped by PID only."""

    def __init__(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None,
                 cpus: set[int] | None = None, log: Path | None = None) -> None:
        self.name = name
        self.t_spawn = time.monotonic()
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (closed in stop)
        self._log = out
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.p = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  preexec_fn=pin, start_new_session=True)
        self.pid = self.p.pid

    def pids(self) -> list[int]:
        out, todo = [], [self.pid]
        for _ in range(1000):  # bounded walk of the process tree
            if not todo:
                break
            pid = todo.pop()
            out.append(pid)
            try:
                todo += [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text()
                         .split()]
            except OSError:
                continue
        return out

    def cpu_s(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / TICK

    def rss_mb(self, key: str = "VmRSS") -> float:
        kb = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(key + ":"):
                        kb += int(line.split()[1])
            except OSError:
                continue
        return kb / 1024

    def stop(self, grace_s: float = 10.0) -> None:
        pids = self.pids()
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=5)
        for pid in pids[1:]:  # workers that outlived their parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]


def wait_http(url: str, proc: Proc, timeout_s: float = 60.0) -> float:
    """Seconds from the process's spawn until ``url`` answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.p.returncode} before {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - proc.t_spawn
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{proc.name}: {url} not ready after {timeout_s}s")


def start_mock(port: int, cpus: set[int] | None) -> Proc:
    """The shared harness's fast mock upstream (the model name sets its delays), or
    `thrifty fake-provider` when the harness's venv is missing."""
    script = SHARED_BENCH / "mock_upstream.py"
    if BENCH_PY.exists() and script.exists():
        proc = Proc("mock", [str(BENCH_PY), str(script), "--port", str(port)], cpus=cpus)
        wait_http(f"http://127.0.0.1:{port}/health", proc)
    else:
        proc = Proc("fake-provider", [*thrifty_argv(), "fake-provider", "--wire", "openai",
                                      "--port", str(port)], cpus=cpus)
        wait_port(port, proc)
    return proc


def start_thrifty(port: int, upstream_port: int, ledger: Path, cpus: set[int] | None, *,
                  workers: int = 1, config: Path = CONFIG, log: Path | None = None) -> Proc:
    env = {"BENCH_UPSTREAM_V1": f"http://127.0.0.1:{upstream_port}/v1",
           "THRIFTY_BENCH_LEDGER": str(ledger), "THRIFTY_MASTER_KEY": ""}
    return Proc("thrifty", [*thrifty_argv(), "serve", "--port", str(port), "--config",
                            str(config), "--workers", str(workers)], env=env, cpus=cpus,
                log=log)


def start_bare(port: int, upstream_port: int, cpus: set[int] | None) -> Proc | None:
    """The shared harness's bare aiohttp pass-through (one worker), if it is installed."""
    script = SHARED_BENCH / "thin_proxy.py"
    if not (BENCH_PY.exists() and script.exists()):
        return None
    return Proc("bare-aiohttp", [str(BENCH_PY), str(script), "--port", str(port), "--upstream",
                                 f"http://127.0.0.1:{upstream_port}", "--impl", "aiohttp"],
                cpus=cpus)


def wait_port(port: int, proc: Proc, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.p.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{proc.name}: nothing listening on {port}")


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def machine_facts() -> dict[str, str]:
    """What RESULTS.md records next to the figures."""
    import platform
    from datetime import date

    import aiohttp

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"date": date.today().isoformat(), "nproc": str(os.cpu_count()), "cpu": model,
            "kernel": platform.release(), "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
