#!/usr/bin/env python3
"""Issue 6: thrifty against LiteLLM, nginx and the bare aiohttp pass-through, in one run.

Drives the shared overhead harness (/work/shared/bench/run_overhead.sh: wrk load, CPU
pinning, a fresh loopback-only network namespace) with thrifty plugged in twice, one worker
and `--workers 2`, both with every per-request feature on (benchmarks/configs/harness.yaml:
SQLite ledger, a lowest-cost alias in front of each mock model, three budget rules, the
default Prometheus metrics and drift detection). Then measures what the harness does not
(stream_timing.py: time to first token added, chunk pass-through, start-up, import), and
prints every target of the issue as a ratio against the bare pass-through of the same run,
with PASS/FAIL, plus the absolute figures and LiteLLM's.

    python benchmarks/vs_litellm.py --quick            # ~4 min: a small matrix
    python benchmarks/vs_litellm.py --runs 2           # the full matrix twice (~25 min)
    python benchmarks/vs_litellm.py --quick --runs 3   # medians of 3 quick runs (~15 min)
    python benchmarks/vs_litellm.py --quick --aiohttp-front   # + thrifty on aiohttp alone
    python benchmarks/vs_litellm.py --results DIR/results.json [...]   # re-report runs

The harness's setup.sh apt-installs nginx and wrk and makes its venvs under /tmp (LiteLLM
from PyPI) on first use. Memory over 100,000 requests is benchmarks/soak.py.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_procs import CONFIG, SHARED_BENCH, machine_facts, thrifty_argv
from stream_timing import StreamFigures, measure, report

BARE, BARE2, DIRECT, LITELLM = "thin-aiohttp-1w", "thin-aiohttp-2w", "direct", "litellm"
THR, THR2, THR_AIO = "thrifty", "thrifty-2w", "thrifty-aiohttp-front"
QUICK_TARGETS = [DIRECT, "nginx", LITELLM, BARE, BARE2]
FULL_TARGETS = [*QUICK_TARGETS, "thin-starlette-httpx-1w"]
Cell = dict[str, Any]


def thrifty_target(name: str, workers: int, ledger_dir: Path, fast_path: bool = True,
                   ) -> list[str]:
    cmd = " ".join([
        "THRIFTY_MASTER_KEY=", f"THRIFTY_BENCH_LEDGER={ledger_dir}/{name}-$$.db",
        f"THRIFTY_BENCH_FAST_PATH={str(fast_path).lower()}",
        *map(shlex.quote, thrifty_argv()), "serve", "--port", "{port}",
        "--config", shlex.quote(str(CONFIG)), "--workers", str(workers)])
    return ["--target", f"{name}={cmd}"]


def run_harness(out: Path, quick: bool, aiohttp_front: bool = False) -> Path:
    ledgers = Path(tempfile.mkdtemp(prefix="thrifty-harness-ledgers-"))
    extra = thrifty_target(THR_AIO, 1, ledgers, fast_path=False) if aiohttp_front else []
    argv = ["bash", str(SHARED_BENCH / "run_overhead.sh"),
            "--targets", ",".join(QUICK_TARGETS if quick else FULL_TARGETS),
            *thrifty_target(THR, 1, ledgers), *thrifty_target(THR2, 2, ledgers), *extra,
            "--unpin", THR2,  # the harness unpins its own multi-worker targets the same way
            "--out", str(out), "--max-seconds", "3000"]
    if quick:
        argv.append("--quick")
    print(f"vs_litellm: {' '.join(shlex.quote(a) for a in argv)}", file=sys.stderr, flush=True)
    with open(out.parent / f"{out.name}.md", "w") as md:
        subprocess.run(argv, stdout=md, check=True)
    return out / "results.json"


# -- figures from one harness run ------------------------------------------------------------

@dataclass
class Figures:
    c1_rps: float | None = None
    add_p50_c1_ms: float | None = None
    cpu_json_us: float | None = None
    c64_rps: float | None = None
    cpu_stream_us: float | None = None
    cpu_burst_us: float | None = None
    streams_c64: float | None = None
    rps_50ms_c64: float | None = None
    start_s: float | None = None
    rss_idle_mb: float | None = None


def _cell(cells: list[Cell], target: str, scenario: str, conc: int) -> Cell | None:
    for c in cells:
        if c["target"] == target and c["scenario"] == scenario and c["conc"] == conc \
                and c.get("ok"):
            return c
    return None


def figures(res: dict[str, Any], target: str) -> Figures:
    cells, f = res["cells"], Figures()
    direct_c1 = _cell(cells, DIRECT, "json-0ms", 1)
    if (c := _cell(cells, target, "json-0ms", 1)) is not None:
        f.c1_rps = c["rps"]
        f.add_p50_c1_ms = c["p50_ms"] - direct_c1["p50_ms"] if direct_c1 else None
    if (c := _cell(cells, target, "json-0ms", 64)) is not None:
        f.c64_rps, f.cpu_json_us = c["rps"], c.get("gw_cpu_us_per_req")
    # 20 chunks 1 ms apart: what the reference table's "CPU per 20-chunk stream" measured
    if (c := _cell(cells, target, "sse-itl1", 64)) is not None:
        f.cpu_stream_us, f.streams_c64 = c.get("gw_cpu_us_per_req"), c["rps"]
    if (c := _cell(cells, target, "sse-0ms", 64)) is not None:  # 20 chunks in one burst
        f.cpu_burst_us = c.get("gw_cpu_us_per_req")
    if (c := _cell(cells, target, "json-50ms", 64)) is not None:
        f.rps_50ms_c64 = c["rps"]
    info = res["targets"].get(target, {})
    f.start_s, f.rss_idle_mb = info.get("startup_s"), info.get("rss_idle_mb")
    return f


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclass
class Check:
    name: str
    value: float | None
    limit: float
    higher_is_better: bool
    detail: str

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[self.passed]
        sign = ">=" if self.higher_is_better else "<="
        shown = "-" if self.value is None else f"{self.value:.2f}"
        return f"  {verdict}  {self.name:44} {shown:>7} ({sign} {self.limit:g})  {self.detail}"


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def checks(res: dict[str, Any]) -> list[Check]:
    t, b, d = figures(res, THR), figures(res, BARE), figures(res, DIRECT)
    t2, b2 = figures(res, THR2), figures(res, BARE2)
    scaling_ref = _ratio(b2.c64_rps, b.c64_rps)
    return [
        Check("CPU per JSON request / bare", _ratio(t.cpu_json_us, b.cpu_json_us), 1.7, False,
              f"{_fmt(t.cpu_json_us, '.0f')} vs {_fmt(b.cpu_json_us, '.0f')} us (c=64)"),
        Check("CPU per 20-chunk stream / bare", _ratio(t.cpu_stream_us, b.cpu_stream_us), 1.7,
              False, f"{_fmt(t.cpu_stream_us, '.0f')} vs {_fmt(b.cpu_stream_us, '.0f')} us "
                     "(chunks 1 ms apart)"),
        Check("CPU per burst stream / bare", _ratio(t.cpu_burst_us, b.cpu_burst_us), 1.7,
              False, f"{_fmt(t.cpu_burst_us, '.0f')} vs {_fmt(b.cpu_burst_us, '.0f')} us "
                     "(20 chunks at once; full matrix only)"),
        Check("requests/s at c=64 / bare", _ratio(t.c64_rps, b.c64_rps), 0.6, True,
              f"{_fmt(t.c64_rps, ',.0f')} vs {_fmt(b.c64_rps, ',.0f')}"),
        Check("requests/s, 50 ms upstream, c=64 / direct",
              _ratio(t.rps_50ms_c64, d.rps_50ms_c64), 0.95, True,
              f"{_fmt(t.rps_50ms_c64, ',.0f')} vs {_fmt(d.rps_50ms_c64, ',.0f')}"),
        Check("requests/s at c=64, 2 workers / 1 worker", _ratio(t2.c64_rps, t.c64_rps), 1.5,
              True, f"{_fmt(t2.c64_rps, ',.0f')} vs {_fmt(t.c64_rps, ',.0f')}; bare's "
                    f"2w/1w {_fmt(scaling_ref, '.2f')}"),
        Check("added p50 at c=1 / bare's", _ratio(t.add_p50_c1_ms, b.add_p50_c1_ms), 1.5,
              False, f"+{_fmt(t.add_p50_c1_ms, '.2f')} vs +{_fmt(b.add_p50_c1_ms, '.2f')} ms"),
        Check("idle RSS / bare", _ratio(t.rss_idle_mb, b.rss_idle_mb), 2.0, False,
              f"{_fmt(t.rss_idle_mb, '.0f')} vs {_fmt(b.rss_idle_mb, '.0f')} MB"),
    ]


def stream_checks(s: StreamFigures) -> list[Check]:
    added = s.ttft_p50_ms["thrifty"] - s.ttft_p50_ms["direct"]
    bare = s.ttft_p50_ms.get("bare-aiohttp")
    bare_added = None if bare is None else bare - s.ttft_p50_ms["direct"]
    start, bare_start = s.start_s["thrifty"], s.start_s.get("bare-aiohttp")
    start_x = _ratio(start, bare_start)
    bare_import = s.import_ms["import aiohttp.web, uvloop"]
    return [
        Check("time to first token added, p50 (ms)", added, 1.0, False,
              f"bare pass-through adds {_fmt(bare_added, '.2f')} ms"),
        Check("stream arrivals through thrifty / direct",
              s.arrivals["thrifty"] / s.arrivals["direct"], 0.9, True,
              f"{s.arrivals['thrifty']} vs {s.arrivals['direct']} reads; first data at "
              f"{s.first_share['thrifty']:.0%} of the stream"),
        Check("`thrifty serve` to /readyz 200 (s)", start, 1.5, False,
              f"bare proxy {_fmt(bare_start, '.2f')} s: {_fmt(start_x, '.1f')}x"),
        Check("`import thrifty` (ms)", s.import_ms["import thrifty"], 300, False,
              f"`import aiohttp.web, uvloop` (the bare proxy's) {bare_import:.0f} ms"),
    ]


TABLE_COLS: list[tuple[str, Callable[[Figures], str]]] = [
    ("c=1 req/s", lambda f: _fmt(f.c1_rps, ",.0f")),
    ("+p50 c=1", lambda f: _fmt(f.add_p50_c1_ms, ".2f") + " ms"),
    ("CPU/JSON req", lambda f: _fmt(f.cpu_json_us, ",.0f") + " us"),
    ("c=64 req/s", lambda f: _fmt(f.c64_rps, ",.0f")),
    ("CPU/stream", lambda f: _fmt(f.cpu_stream_us, ",.0f") + " us"),
    ("streams/s c=64", lambda f: _fmt(f.streams_c64, ",.0f")),
    ("CPU/burst stream", lambda f: _fmt(f.cpu_burst_us, ",.0f") + " us"),
    ("50 ms c=64 req/s", lambda f: _fmt(f.rps_50ms_c64, ",.0f")),
    ("start", lambda f: _fmt(f.start_s, ".1f") + " s"),
    ("RSS idle", lambda f: _fmt(f.rss_idle_mb, ",.0f") + " MB"),
]


def table(res: dict[str, Any]) -> list[str]:
    out = ["| target | " + " | ".join(c for c, _ in TABLE_COLS) + " |",
           "|---|" + "--:|" * len(TABLE_COLS)]
    for t in res["target_order"]:
        f = figures(res, t)
        out.append(f"| {t} | " + " | ".join(fn(f) for _, fn in TABLE_COLS) + " |")
    t, lite = figures(res, THR), figures(res, LITELLM)
    out.append("")
    out.append("LiteLLM / thrifty (same run): CPU per JSON request "
               f"{_fmt(_ratio(lite.cpu_json_us, t.cpu_json_us), '.1f')}x, per stream "
               f"{_fmt(_ratio(lite.cpu_stream_us, t.cpu_stream_us), '.1f')}x, c=64 req/s "
               f"{_fmt(_ratio(t.c64_rps, lite.c64_rps), '.1f')}x fewer, idle RSS "
               f"{_fmt(_ratio(lite.rss_idle_mb, t.rss_idle_mb), '.1f')}x, start "
               f"{_fmt(_ratio(lite.start_s, t.start_s), '.1f')}x")
    return out


def report_run(res: dict[str, Any], path: Path) -> list[str]:
    mode = "quick" if res["args"].get("quick") else "full"
    lines = [f"## harness run {res['run_id']} ({mode} matrix, {path})", "",
             f"loadavg at start {' '.join(res['loadavg_start'])}, at end "
             f"{' '.join(res['loadavg_end'])}; pinning {res['pinning']}", ""]
    lines += table(res)
    lines += ["", "targets (thrifty vs the bare aiohttp pass-through, same run):"]
    lines += [c.line() for c in checks(res)]
    return lines


def median_checks(runs: list[dict[str, Any]]) -> list[str]:
    """Each target's median ratio over several runs, judged on the median: on a noisy
    machine one run can pass or fail a target that the next one does the opposite of."""
    per_run = [checks(res) for res in runs]
    lines = [f"## median of {len(runs)} harness runs (thrifty vs bare, each ratio from its "
             "own run)", ""]
    for i, first in enumerate(per_run[0]):
        values = sorted(v for c in per_run if (v := c[i].value) is not None)
        median = statistics.median(values) if values else None
        spread = f"runs: {', '.join(f'{v:.2f}' for v in values)}" if values else ""
        lines.append(Check(first.name, median, first.limit, first.higher_is_better,
                           spread).line())
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the harness's small matrix")
    ap.add_argument("--runs", type=int, default=1, help="harness runs (each is reported)")
    ap.add_argument("--results", nargs="*", default=[], metavar="results.json",
                    help="report these finished harness runs instead of running it")
    ap.add_argument("--out", default="", help="where harness runs go (default: a temp dir)")
    ap.add_argument("--no-stream-timing", action="store_true")
    ap.add_argument("--aiohttp-front", action="store_true",
                    help=f"also run thrifty with server.fast_path false ({THR_AIO})")
    a = ap.parse_args()
    paths = [Path(p) for p in a.results]
    if not paths:
        base = Path(a.out or tempfile.mkdtemp(prefix="thrifty-vs-litellm-"))
        base.mkdir(parents=True, exist_ok=True)
        for i in range(a.runs):
            paths.append(run_harness(base / f"run-{i + 1}-{time.strftime('%H%M%S')}", a.quick,
                                     a.aiohttp_front))
    facts = machine_facts()
    lines = ["machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()), ""]
    runs = [json.loads(p.read_text()) for p in paths]
    for res, p in zip(runs, paths, strict=True):
        lines += [*report_run(res, p), ""]
    if len(runs) > 1:
        lines += [*median_checks(runs), ""]
    if not a.no_stream_timing:
        s = measure()
        lines += ["## outside the harness (stream_timing.py, same machine)", ""]
        lines += [*report(s), "", "targets:", *(c.line() for c in stream_checks(s))]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
