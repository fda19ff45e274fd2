"""The pure parts: gateway overhead from the calls' timeline, bounded label values, and the
upstream error classes."""

from __future__ import annotations

import pytest

from thrifty.engine.calls import Call
from thrifty.telemetry.labels import OTHER, BoundedValues, RouteNames, upstream_error_class
from thrifty.telemetry.overhead import overhead_ms, upstream_ms

from .outcomes import failed, ok, targets


@pytest.fixture(scope="module")
def t() -> dict[str, object]:
    return dict(targets())


def test_json_overhead_is_latency_minus_the_upstream_call(t: dict) -> None:
    calls = [ok(t["mini"], offset=2.0, latency=90.0)]
    assert overhead_ms(calls, latency_ms=93.5, ttft_ms=93.5) == pytest.approx(3.5)


def test_stream_overhead_stops_at_the_first_token(t: dict) -> None:
    # the relayed call's latency was stretched to the stream's end; its first token is what
    # counts, so the 2 s of streaming are not "upstream time" subtracted from the ttft
    call = ok(t["mini"], offset=1.0, latency=2000.0, first_byte=40.0)
    assert overhead_ms([call], latency_ms=2001.0, ttft_ms=42.0) == pytest.approx(2.0)


def test_sequential_calls_add_up_and_gaps_between_them_are_overhead(t: dict) -> None:
    calls = [failed(t["mini"], 503, "upstream_unavailable", offset=1.0, latency=10.0),
             ok(t["haiku"], offset=15.0, latency=50.0)]
    assert upstream_ms(calls) == pytest.approx(60.0)
    assert overhead_ms(calls, latency_ms=66.0, ttft_ms=66.0) == pytest.approx(6.0)


def test_overlapping_calls_count_once(t: dict) -> None:
    # a hedge: the second deployment raced from 30 ms, the first won at 80 ms, the loser was
    # cancelled at 81 ms; a cascade tier's parallel calls overlap the same way
    loser = Call(t["haiku"], 0, status=499, error_code="cancelled", latency_ms=51.0,
                 offset_ms=30.0)
    winner = ok(t["mini"], offset=0.0, latency=80.0)
    assert upstream_ms([winner, loser]) == pytest.approx(81.0)
    assert upstream_ms([loser, winner]) == pytest.approx(81.0)


def test_calls_after_a_stream_continuation_are_after_the_first_token(t: dict) -> None:
    cut = ok(t["mini"], offset=1.0, latency=900.0, first_byte=30.0,
             verdict="stream cut: continued elsewhere")
    cont = ok(t["haiku"], offset=700.0, latency=300.0, first_byte=60.0)
    assert upstream_ms([cut, cont]) == pytest.approx(30.0)
    assert overhead_ms([cut, cont], latency_ms=1001.0, ttft_ms=33.0) == pytest.approx(3.0)


def test_overhead_is_never_negative(t: dict) -> None:
    assert overhead_ms([ok(t["mini"], latency=100.0)], latency_ms=99.0, ttft_ms=None) == 0.0


def test_bounded_values_file_the_overflow_under_other() -> None:
    keys = BoundedValues(2)
    assert [keys(v) for v in ("a", "b", "c", "a", None, "")] == ["a", "b", OTHER, "a",
                                                                  "none", "none"]
    assert keys.values() == ["a", "b"]


def test_route_names_keep_only_the_route_part() -> None:
    routes = RouteNames(5)
    assert routes("auto;cascade;rules:auto#2>cheap") == "auto"
    assert routes("direct") == "direct"
    assert routes(None) == "none"


def test_route_names_are_bounded_by_route_not_by_rule_path() -> None:
    routes = RouteNames(1)
    assert routes("auto;cascade;x") == "auto"
    assert routes("auto;cascade;y") == "auto"  # same route, another rule path: same value
    assert routes("other-route;fallback") == OTHER


@pytest.mark.parametrize(("status", "code", "cls"), [
    (429, "rate_limit_exceeded", "rate_limit"), (503, "upstream_unavailable", "server"),
    (502, "upstream_connection_failed", "connection"), (504, "upstream_timeout", "timeout"),
    (502, "upstream_bad_response", "bad_response"), (401, "upstream_authentication_failed",
                                                     "auth"),
    (499, "cancelled", "cancelled"), (400, "context_length_exceeded", "client"),
    (500, "some_vendor_code", "server"),
])
def test_upstream_error_classes(status: int, code: str, cls: str) -> None:
    assert upstream_error_class(status, code) == cls

