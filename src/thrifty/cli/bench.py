"""``thrifty bench routing``: replay a routing dataset through a policy and compare it with
the best single model, per pool (see ``thrifty.replay``)."""

from __future__ import annotations

import argparse


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    r = sub.add_parser("routing", help="replay a routing dataset through a policy")
    r.add_argument("--data", required=True, help="routing rows (JSONL)")
    r.add_argument("--prices", required=True, help="price file {model: {input_per_mtok, ...}}")
    r.add_argument("--policy", default="auto",
                   help="a shipped policy (auto, lowest-cost, ...), a config file or a "
                        "trained router directory (default auto)")
    r.add_argument("--route", default=None, help="which alias of a config file to replay")
    r.add_argument("--strong", default=None, help="strong model for the APGR sweep")
    r.add_argument("--weak", default=None, help="weak model for the APGR sweep")
    r.add_argument("--quality-floor", type=float, default=None,
                   help="learned routers: the predicted-quality floor")
    r.add_argument("--threshold", type=float, default=None,
                   help="learned routers with a strong/weak pair: the score threshold")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from thrifty.replay.report import bench_routing

    return asyncio.run(bench_routing(args))
