"""The metrics observer over finished requests made by hand: what each series counts, that
nothing reaches the series before a flush and everything after it, label caps, and the
scrape-time gauges rendered from a given state."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from thrifty.config.telemetry import MetricsConfig
from thrifty.core.usage import Usage
from thrifty.limits.model import Limit
from thrifty.telemetry.metrics import Metrics
from thrifty.telemetry.scrape import ScrapeState, exposition

from .outcomes import failed, finished, ok, targets
from .promtext import label_values, samples, total


@pytest.fixture(scope="module")
def t() -> dict:
    return dict(targets())


def scrape(m: Metrics) -> list:
    m.flush()
    return samples(generate_latest(m.registry).decode())


def metrics(**labels: object) -> Metrics:
    return Metrics(MetricsConfig.model_validate({"labels": labels}))


def test_a_json_request_counts_once_with_its_tokens_cost_and_timings(t: dict) -> None:
    m = metrics()
    usage = Usage(input_tokens=1000, output_tokens=200, cached_input_tokens=400,
                  reasoning_tokens=50)
    o, e = finished([ok(t["mini"], offset=2.0, latency=90.0, usage=usage)], latency_ms=95.0)
    m.request_done(o, e)
    s = scrape(m)
    labels = {"provider": "openai", "model": "gpt-4o-mini"}
    assert total(s, "thrifty_requests_total", status="200", **labels) == 1
    assert total(s, "thrifty_tokens_total", type="input", **labels) == 1000
    assert total(s, "thrifty_tokens_total", type="cached_input", **labels) == 400
    assert total(s, "thrifty_tokens_total", type="output", **labels) == 200
    assert total(s, "thrifty_tokens_total", type="reasoning", **labels) == 50
    assert total(s, "thrifty_cost_usd_total", **labels) == pytest.approx(e.cost_nano_usd / 1e9)
    assert e.cost_nano_usd > 0
    assert total(s, "thrifty_request_duration_seconds_sum", **labels) == pytest.approx(0.095)
    assert total(s, "thrifty_request_duration_seconds_bucket", le="0.1", **labels) == 1
    assert total(s, "thrifty_request_duration_seconds_bucket", le="0.05", **labels) == 0
    assert total(s, "thrifty_gateway_overhead_seconds_sum", stream="false") == (
        pytest.approx(0.005))
    # a JSON answer has no separate first token: no ttft series at all
    assert not [x for x in s if x.name.startswith("thrifty_time_to_first_token")]


def test_nothing_reaches_the_series_until_flushed(t: dict) -> None:
    m = metrics()
    m.request_done(*finished([ok(t["mini"])]))
    before = samples(generate_latest(m.registry).decode())
    assert total(before, "thrifty_requests_total") == 0
    assert total(scrape(m), "thrifty_requests_total") == 1
    assert total(scrape(m), "thrifty_requests_total") == 1  # a flush moves each figure once


def test_streams_record_time_to_first_token(t: dict) -> None:
    m = metrics()
    call = ok(t["haiku"], offset=1.0, latency=2000.0, first_byte=40.0)
    m.request_done(*finished([call], stream=True, latency_ms=2001.0, ttft_ms=43.0))
    s = scrape(m)
    assert total(s, "thrifty_time_to_first_token_seconds_sum") == pytest.approx(0.043)
    assert total(s, "thrifty_gateway_overhead_seconds_sum", stream="true") == (
        pytest.approx(0.003))  # 43 ms to the first token, 40 of them upstream


def test_a_fallback_counts_the_failed_call_by_class_and_bills_each_call_to_its_model(
        t: dict) -> None:
    m = metrics()
    calls = [failed(t["mini"], 429, "rate_limit_exceeded"), ok(t["haiku"], offset=20.0)]
    m.request_done(*finished(calls, route="sturdy;fallback"))
    s = scrape(m)
    assert total(s, "thrifty_fallbacks_total", route="sturdy") == 1
    assert total(s, "thrifty_upstream_errors_total", provider="openai",
                 **{"class": "rate_limit"}) == 1
    assert total(s, "thrifty_requests_total", provider="anthropic", route="sturdy") == 1
    assert total(s, "thrifty_tokens_total", provider="anthropic", type="input") == 100
    assert total(s, "thrifty_tokens_total", provider="openai") == 0  # failed: not billed
    assert total(s, "thrifty_cascade_escalations_total") == 0


def test_cascade_escalations_count_rejected_tiers_not_fallbacks(t: dict) -> None:
    m = metrics()
    calls = [ok(t["flash"], verdict="escalated: json_valid"),
             ok(t["mini"], offset=100.0, tier=1, verdict="accepted")]
    m.request_done(*finished(calls, route="auto;cascade", mode="cascade"))
    s = scrape(m)
    assert total(s, "thrifty_cascade_escalations_total", route="auto") == 1
    assert total(s, "thrifty_fallbacks_total") == 0
    # the rejected cheap tier was still billed, to its own model
    assert total(s, "thrifty_tokens_total", provider="gemini", type="input") == 100


def test_a_refused_request_counts_as_an_error_without_timings() -> None:
    m = metrics()
    m.request_done(*finished([], status=429, error="budget_exceeded", route=None,
                             latency_ms=0.4))
    s = scrape(m)
    assert total(s, "thrifty_requests_total", status="429", provider="none") == 1
    assert total(s, "thrifty_request_errors_total", code="budget_exceeded") == 1
    assert total(s, "thrifty_gateway_overhead_seconds_count") == 0
    assert total(s, "thrifty_request_duration_seconds_count") == 0


def test_team_and_key_labels_are_capped_and_optional(t: dict) -> None:
    m = metrics(key=True, team=True, max_values=2)
    for i in range(5):
        m.request_done(*finished([ok(t["mini"])], team=f"team-{i}", key_id=f"key_{i}"))
    s = scrape(m)
    assert label_values(s, "thrifty_requests_total", "team") == {"team-0", "team-1", "other"}
    assert label_values(s, "thrifty_requests_total", "key") == {"key_0", "key_1", "other"}
    assert total(s, "thrifty_requests_total", team="other") == 3
    off = metrics(key=False, team=False, route=False)
    off.request_done(*finished([ok(t["mini"])], team="a", key_id="key_a"))
    names = {k for x in scrape(off) for k in x.labels}
    assert not names & {"team", "key", "route"}


def test_cache_hit_series_exist_at_zero_and_count(t: dict) -> None:
    m = metrics()
    assert total(scrape(m), "thrifty_cache_hits_total", cache="exact") == 0
    assert label_values(scrape(m), "thrifty_cache_hits_total", "cache") == {"exact", "semantic"}
    m.cache_hit("exact")
    assert total(scrape(m), "thrifty_cache_hits_total", cache="exact") == 1


def test_scrape_time_gauges() -> None:
    m = metrics()
    lim = Limit("usd", "day", "team", "research", amount=10_000_000_000)  # $10
    state = ScrapeState(
        breakers=[("openai/gpt-4o-mini", "openai", "gpt-4o-mini", "open")],
        budgets=[(lim, 2_500_000_000, 500_000_000)],
        drift=[{"provider": "openai", "model": "gpt-4o-mini", "signal": "latency_ms"}])
    s = samples(exposition(state, m, None).decode())
    assert total(s, "thrifty_breaker_state", deployment="openai/gpt-4o-mini", state="open") == 1
    assert total(s, "thrifty_breaker_state", state="closed") == 0
    assert total(s, "thrifty_budget_remaining", limit="team=research:usd:day") == (
        pytest.approx(7.0))
    assert total(s, "thrifty_budget_limit", limit="team=research:usd:day") == pytest.approx(10)
    assert total(s, "thrifty_drift_alert", signal="latency_ms", model="gpt-4o-mini") == 1
