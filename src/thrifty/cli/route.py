"""``thrifty route --explain``: how a request would be routed, without calling anything:
the candidates with their expected cost and latency, the policy's scores and exclusions,
and the resulting plan. With no providers configured it explains against the whole price
catalog (every vendor as if its key were set)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from thrifty.errors import ThriftyError

if TYPE_CHECKING:
    from thrifty.config.resolve import Runtime
    from thrifty.core.request import ChatRequest


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help="the user message to route")
    p.add_argument("--model", "-m", default="auto", help="model or alias (default auto)")
    p.add_argument("--config", "-c", default=os.environ.get("THRIFTY_CONFIG"))
    p.add_argument("--explain", action="store_true", help="print the full decision (default)")
    p.add_argument("--system", default=None, help="a system message")
    p.add_argument("--tools", action="store_true", help="pretend the request carries tools")
    p.add_argument("--image", action="store_true", help="pretend it carries an image")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def _runtime(config: str | None) -> tuple[Runtime, str]:
    from pathlib import Path

    from thrifty.config.load import load_settings, parse_settings
    from thrifty.config.resolve import resolve
    from thrifty.providers.vendors import VENDORS

    settings = load_settings(config)
    if config or settings.providers:
        return resolve(settings, base_dir=Path(config).parent if config else None), ""
    providers = {v.name: {"api_key": "explain-only"} for v in VENDORS.values()
                 if not v.self_hosted and v.name != "azure"}
    note = "no providers configured: explaining against the whole catalog"
    return resolve(parse_settings({"providers": providers}, origin="catalog")), note


def _request(args: argparse.Namespace) -> ChatRequest:
    from thrifty.core.request import ChatRequest

    content: object = args.prompt
    if args.image:
        content = [{"type": "text", "text": args.prompt},
                   {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": content}]
    body: dict[str, object] = {"model": args.model, "messages": messages}
    if args.tools:
        body["tools"] = [{"type": "function", "function": {"name": "tool", "parameters": {
            "type": "object", "properties": {}}}}]
    if args.max_tokens:
        body["max_tokens"] = args.max_tokens
    return ChatRequest(body=body, model=args.model, stream=False, include_usage=False,
                       request_id="explain")


def run(args: argparse.Namespace) -> int:
    import random

    import orjson
    from rich.console import Console
    from rich.table import Table

    from thrifty.core.clock import SystemClock
    from thrifty.engine.planner import plan_request, route_summary
    from thrifty.routing.stats import RouterStats

    runtime, note = _runtime(args.config)
    try:
        route, plan = plan_request(_request(args), runtime.routes, RouterStats(),
                                   random.Random(0), SystemClock())
    except ThriftyError as exc:  # an unknown model, nothing eligible: say so, no traceback
        print(f"thrifty: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps({"route": route_summary(route, plan), **plan.to_json()},
                           option=orjson.OPT_INDENT_2).decode())
        return 0
    console = Console(width=max(Console().width, 120))
    if note:
        console.print(f"[dim]{note}[/]")
    console.print(f"[bold]{args.model}[/] -> route {route_summary(route, plan)}: {plan.reason}")
    if plan.via:
        console.print("via " + " > ".join(plan.via))
    t = Table("candidate", "provider", "expected $", "expected ms", "score", "status")
    for c in plan.candidates:
        t.add_row(c.model, c.provider,
                  f"{c.expected_cost_usd:.7f}" if c.expected_cost_usd is not None else "-",
                  f"{c.expected_latency_ms:.0f}" if c.expected_latency_ms is not None else "-",
                  f"{c.score:.6g}" if c.score is not None else "-",
                  f"excluded: {c.excluded}" if c.excluded else "eligible")
    console.print(t)
    for i, tier in enumerate(plan.tiers):
        kind = "tier" if plan.mode == "cascade" else "attempt"
        checks = ", ".join(getattr(c, "name", type(c).__name__) for c in tier.checks)
        console.print(f"  {kind} {i + 1}: {' + '.join(t.model for t in tier.targets)}"
                      + (f"  [dim]checks: {checks}[/]" if checks else ""))
    return 0
