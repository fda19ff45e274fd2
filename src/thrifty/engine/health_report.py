"""What ``GET /v1/thrifty/health`` and ``thrifty health`` show: for every deployment the
gateway can route to, its breaker state (from the shared health store), error rate,
latency and time to first token (this worker's EWMA), and rate-limit headroom."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thrifty.engine.gateway import Gateway


async def deployment_report(gw: Gateway) -> dict[str, Any]:
    snap = await gw.resilience.health.snapshot()
    seen: dict[str, dict[str, Any]] = {}
    for route in gw.routes.routes():
        for t in route.targets:
            if t.key in seen:
                continue
            h = snap.get(t.key)
            s = gw.stats.get(t.key)
            entry: dict[str, Any] = {
                "deployment": t.key, "provider": t.provider, "model": t.upstream_model,
                "state": str(h.state) if h else "closed",
                "error_rate": round(h.error_rate if h else s.error_rate, 4),
                "consecutive_failures": h.consecutive_failures if h else 0,
                "cooldown_remaining_s": round(h.cooldown_remaining_s, 3) if h else 0.0,
                "latency_ms": round(s.latency_ms, 1) if s.latency_ms is not None else None,
                "ttft_ms": round(s.ttft_ms, 1) if s.ttft_ms is not None else None,
                "in_flight": s.in_flight, "samples": s.samples,
                "last_error": h.last_error if h else None,
            }
            if h is not None and h.headroom is not None:
                entry["headroom"] = {"requests_remaining": h.headroom.requests_remaining,
                                     "tokens_remaining": h.headroom.tokens_remaining}
            seen[t.key] = entry
    deployments = sorted(seen.values(), key=lambda e: (e["state"] == "closed", e["deployment"]))
    return {"object": "list", "data": deployments}
