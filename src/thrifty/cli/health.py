"""``thrifty health``: ask a running gateway for its deployments' health (breaker state,
error rate, latency, headroom) and print it."""

from __future__ import annotations

import argparse
import os


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("THRIFTY_URL", "http://127.0.0.1:4000"),
                   help="the gateway (default $THRIFTY_URL or http://127.0.0.1:4000)")
    p.add_argument("--json", action="store_true", help="print the raw JSON")


def run(args: argparse.Namespace) -> int:
    import sys
    import urllib.error
    import urllib.request

    import orjson

    req = urllib.request.Request(f"{args.url.rstrip('/')}/v1/thrifty/health")
    key = os.environ.get("THRIFTY_MASTER_KEY")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            report = orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        print(f"thrifty: the gateway answered {exc.code}: {exc.read().decode(errors='replace')}",
              file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"thrifty: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"deployments of {args.url}")
    for col in ("deployment", "state", "error rate", "fails", "cooldown s", "latency ms",
                "ttft ms", "in flight", "last error"):
        t.add_column(col, justify="left" if col in ("deployment", "state", "last error")
                     else "right")
    for d in report["data"]:
        t.add_row(d["deployment"], d["state"], f"{d['error_rate']:.2%}",
                  str(d["consecutive_failures"]), f"{d['cooldown_remaining_s']:.1f}",
                  "-" if d["latency_ms"] is None else f"{d['latency_ms']:.0f}",
                  "-" if d["ttft_ms"] is None else f"{d['ttft_ms']:.0f}",
                  str(d["in_flight"]), d["last_error"] or "")
    Console(width=max(Console().width, 120)).print(t)
    return 0
