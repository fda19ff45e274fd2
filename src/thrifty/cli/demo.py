"""``thrifty demo``: the whole gateway offline. Fake providers stand in for five vendors
(at their catalog prices and realistic latencies), the gateway runs on embedded defaults
(SQLite ledger, in-process state), a mixed workload goes through it with the official
``openai`` SDK, and the spend table is read back from the ledger. Then the shipped ``auto``
route is replayed over recorded answers of real models (``demo_savings``)."""

from __future__ import annotations

import argparse

# vendor -> (wire, first-byte latency ms, tokens/s, preferred catalog model ids)
DEMO_VENDORS: dict[str, tuple[str, float, float, tuple[str, ...]]] = {
    "openai": ("openai", 60, 400, ("gpt-4o-mini", "gpt-4o")),
    "deepseek": ("openai", 140, 250, ("deepseek-v4-flash",)),
    "mistral": ("openai", 70, 350, ("mistral-small-latest",)),
    "anthropic": ("anthropic", 90, 300, ("claude-haiku-4-5", "claude-sonnet-4-6")),
    "gemini": ("gemini", 50, 500, ("gemini-2.5-flash",)),
}


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requests", type=int, default=40, help="workload size (default 40)")
    p.add_argument("--db", default=None, help="keep the demo ledger at this path "
                                               "(default: a temporary file)")
    p.add_argument("--quiet", action="store_true", help="only print the tables")
    p.add_argument("--savings-only", action="store_true",
                   help="only replay the shipped sample of recorded answers through the "
                        "auto route and print the savings table (no fake providers)")


def run(args: argparse.Namespace) -> int:
    if args.savings_only:
        from thrifty.cli.demo_savings import run_savings

        return run_savings()
    try:
        import openai  # noqa: F401
    except ImportError:
        print("thrifty demo drives the gateway with the official openai SDK: "
              "pip install 'thrifty[demo]'")
        return 1
    import asyncio

    from thrifty.cli.demo_run import run_demo

    return asyncio.run(run_demo(args.requests, args.db, quiet=args.quiet))
