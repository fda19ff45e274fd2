"""The fake provider server: one aiohttp app per wire, the request flow (auth -> parse ->
fault -> latency -> generate -> bill -> respond, paced), stats, and the in-process runner.
Vendor shapes live in the ``*_wire.py`` modules, generation in ``brain.py``; this module
never formats a vendor body itself. It binds loopback addresses only.

    async with await start_fake("openai", seed=1) as fake:
        client = AsyncOpenAI(base_url=fake.base_url + "/v1", api_key="k")
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from thrifty.core.usage import Usage
from thrifty.fake.anthropic_wire import AnthropicWire
from thrifty.fake.behaviour import Behaviour, shape
from thrifty.fake.brain import Reply, think
from thrifty.fake.exchange import Call, Frame, Wire, WireError
from thrifty.fake.faults import (
    ALL_FAULTS,
    FAULT_HEADER,
    LATENCY_HEADER,
    STATUS_FAULTS,
    FaultPlan,
    UnknownFault,
)
from thrifty.fake.gemini_wire import GeminiWire
from thrifty.fake.openai_wire import OpenAIWire
from thrifty.fake.stats import FakeStats, ServedUsage
from thrifty.fake.usage import PromptCache

WIRES: dict[str, Callable[[], Wire]] = {
    "openai": OpenAIWire,
    "anthropic": AnthropicWire,
    "gemini": GeminiWire,
}


@dataclass(slots=True)
class _Fake:
    """Everything one app instance needs, stored on the app."""

    wire: Wire
    plan: FaultPlan
    seed: int
    latency_s: float
    tokens_per_s: float | None
    api_key: str | None
    timeout_hang_s: float
    models_body: bytes
    cache: PromptCache = field(default_factory=PromptCache)
    stats: FakeStats = field(default_factory=FakeStats)
    serials: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    behaviour: Behaviour = field(default_factory=Behaviour)
    start_error_rate: float = 0.0
    draws: random.Random = field(default_factory=random.Random)
    """Seeded draws for the behaviour's rates (refusals, broken JSON)."""

    def behave(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        rate = behaviour.error_rate
        self.plan.rate = self.start_error_rate if rate is None else rate

    def bill(self, call: Call, reply: Reply) -> Usage:
        rule = self.cache.explicit if call.explicit_cache else self.cache.automatic
        prompt = rule(call.segments)
        return Usage(
            input_tokens=prompt.total,
            output_tokens=reply.output_tokens,
            cached_input_tokens=prompt.cached,
            cache_write_tokens=prompt.cache_write,
            reasoning_tokens=reply.reasoning_tokens,
        )

    async def pace(self, tokens: int) -> None:
        if self.tokens_per_s and tokens > 0:
            await asyncio.sleep(tokens / self.tokens_per_s)


FAKE = web.AppKey("thrifty_fake", _Fake)


class _Outcome:
    """How one request ended; stays ``aborted`` unless a path finishes it."""

    __slots__ = ("kind",)

    def __init__(self) -> None:
        self.kind = "aborted"


def build_app(
    wire: str,
    *,
    latency_ms: float = 0,
    tokens_per_s: float | None = None,
    error_rate: float = 0.0,
    faults: Sequence[str] = ALL_FAULTS,
    seed: int = 0,
    api_key: str | None = None,
    timeout_hang_s: float = 30.0,
) -> web.Application:
    """An aiohttp app speaking ``wire`` (openai, anthropic or gemini)."""
    if wire not in WIRES:
        raise ValueError(f"unknown wire {wire!r}; choose from {', '.join(WIRES)}")
    if tokens_per_s is not None and tokens_per_s <= 0:
        raise ValueError(f"tokens_per_s must be positive, got {tokens_per_s}")
    spoken = WIRES[wire]()
    app = web.Application()
    app[FAKE] = _Fake(
        wire=spoken,
        plan=FaultPlan(faults, error_rate, seed),
        seed=seed,
        latency_s=max(0.0, latency_ms) / 1000,
        tokens_per_s=tokens_per_s,
        api_key=api_key,
        timeout_hang_s=timeout_hang_s,
        models_body=spoken.models(),
        start_error_rate=error_rate,
        draws=random.Random(f"behaviour-{seed}"),
    )
    spoken.add_routes(app.router, _chat, _models)
    app.router.add_get("/_fake/stats", _stats)
    app.router.add_post("/_fake/reset", _reset)
    app.router.add_get("/_fake/behaviour", _behaviour)
    app.router.add_post("/_fake/behaviour", _behaviour)
    return app


async def _behaviour(request: web.Request) -> web.Response:
    """``GET`` the behaviour; ``POST`` a new one (see ``fake/behaviour.py``)."""
    fake = request.app[FAKE]
    if request.method == "POST":
        try:
            fake.behave(Behaviour.model_validate_json(await request.read() or b"{}"))
        except ValidationError as exc:
            return web.Response(status=400, content_type="application/json",
                                body=orjson.dumps({"error": exc.errors(include_url=False,
                                                                       include_input=False)}))
    return web.Response(body=fake.behaviour.model_dump_json().encode(),
                        content_type="application/json")


async def _stats(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[FAKE].stats.to_json()),
                        content_type="application/json")


async def _reset(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    fake.stats.reset()
    fake.cache.clear()
    return web.Response(body=b"{}", content_type="application/json")


async def _models(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    denied = fake.wire.authenticate(request, fake.api_key)
    if denied is not None:
        return denied.response(fake.wire.headers())
    return web.Response(body=fake.models_body, content_type="application/json",
                        headers=fake.wire.headers())


async def _chat(request: web.Request) -> web.StreamResponse:
    fake = request.app[FAKE]
    fake.stats.requests += 1
    task = asyncio.current_task()
    if task is not None:
        fake.tasks.add(task)
    outcome = _Outcome()
    try:
        return await _serve(fake, request, outcome)
    finally:
        fake.stats.outcomes[outcome.kind] += 1
        if task is not None:
            fake.tasks.discard(task)


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


async def _serve(fake: _Fake, request: web.Request, outcome: _Outcome) -> web.StreamResponse:
    wire = fake.wire
    headers = wire.headers()
    try:
        denied = wire.authenticate(request, fake.api_key)
        if denied is not None:
            raise denied
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise wire.invalid("We could not parse the JSON body of your request.") from None
        call = wire.parse(request, body)
        try:
            fault = fake.plan.pick(request.headers.get(FAULT_HEADER))
        except UnknownFault as exc:
            raise wire.invalid(str(exc)) from None
    except WireError as err:
        outcome.kind = "rejected"
        return err.response(headers)
    await _first_byte_delay(fake, request)
    if fault is not None and fault in STATUS_FAULTS:
        outcome.kind = fault
        return wire.fault(fault).response(headers)
    if fault in ("timeout", "reset"):
        outcome.kind = fault
        if fault == "timeout":
            await asyncio.sleep(fake.timeout_hang_s)
        _abort(request)
        return web.Response()
    call.serial = next(fake.serials)
    reply = shape(think(call.prompt, fake.seed), call.prompt, fake.behaviour, fake.draws)
    job = _Job(request, outcome, call, reply, fake.bill(call, reply), fault, headers)
    return await (_stream(fake, job) if call.stream else _complete(fake, job))


async def _first_byte_delay(fake: _Fake, request: web.Request) -> None:
    delay = fake.latency_s
    if fake.behaviour.latency_ms is not None:
        delay = fake.behaviour.latency_ms / 1000
    override = request.headers.get(LATENCY_HEADER)
    if override:
        with contextlib.suppress(ValueError):
            delay = max(0.0, float(override)) / 1000
    if delay > 0:
        await asyncio.sleep(delay)


@dataclass(slots=True)
class _Job:
    """A request the fake has decided to answer (possibly with a body fault)."""

    request: web.Request
    outcome: _Outcome
    call: Call
    reply: Reply
    usage: Usage
    fault: str | None
    headers: dict[str, str]

    def served(self, fake: _Fake) -> None:
        self.outcome.kind = "ok"
        usage = self.usage
        fake.stats.served.append(ServedUsage(self.call.model, usage, fake.wire.usage_body(usage)))


async def _complete(fake: _Fake, job: _Job) -> web.StreamResponse:
    body = fake.wire.render(job.call, job.reply, job.usage)
    await fake.pace(job.reply.output_tokens)  # a non-streamed answer takes as long to generate
    if job.fault == "malformed":
        job.outcome.kind = job.fault
        return web.Response(body=body[: len(body) // 2], content_type="application/json",
                            headers=job.headers)
    if job.fault == "cut":
        # Promise the whole body, send half, hang up: the client sees a short read.
        resp = web.StreamResponse(headers={**job.headers, "content-type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(job.request)
        await resp.write(body[: len(body) // 2])
        job.outcome.kind = job.fault
        _abort(job.request)
        return resp
    job.served(fake)
    return web.Response(body=body, content_type="application/json", headers=job.headers)


async def _stream(fake: _Fake, job: _Job) -> web.StreamResponse:
    frames = fake.wire.frames(job.call, job.reply, job.usage)
    if job.fault == "cut":
        frames = frames[: max(1, len(frames) // 2)]
    elif job.fault == "malformed":
        frames = [frames[0], Frame(fake.wire.broken_frame(job.call))]
    content_type = fake.wire.stream_type(job.call)
    resp = web.StreamResponse(
        headers={**job.headers, "content-type": content_type, "cache-control": "no-cache"}
    )
    await resp.prepare(job.request)
    try:
        await _write(fake, resp, frames)
        if job.fault == "cut":
            job.outcome.kind = job.fault
            _abort(job.request)
            return resp
        await resp.write_eof()
    except ConnectionError:
        return resp  # the client left mid-stream: counted as aborted, nothing served
    if job.fault is None:
        job.served(fake)
    else:
        job.outcome.kind = job.fault
    return resp


async def _write(fake: _Fake, resp: web.StreamResponse, frames: list[Frame]) -> None:
    if not fake.tokens_per_s:
        await resp.write(b"".join(f.data for f in frames))  # one write: fastest for benchmarks
        return
    for frame in frames:
        await fake.pace(frame.tokens)
        await resp.write(frame.data)


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the fake provider binds loopback addresses only, not {host!r}")


class RunningFake:
    """A fake provider serving on 127.0.0.1 in this event loop.

    ``base_url`` is the server root. SDKs need: openai ``base_url + "/v1"``; anthropic
    ``base_url``; google-genai ``HttpOptions(base_url=base_url)`` (it adds ``/v1beta``).
    """

    def __init__(self, runner: web.AppRunner, app: web.Application, host: str, port: int) -> None:
        self._runner = runner
        self._app = app
        self.host = host
        self.port = port
        self.wire = app[FAKE].wire.name
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{port}"

    @property
    def stats(self) -> FakeStats:
        return self._app[FAKE].stats

    def set_behaviour(self, **fields: Any) -> Behaviour:
        """Change how the fake behaves from now on (fields of :class:`Behaviour`; those
        left out return to their defaults)."""
        behaviour = Behaviour(**fields)
        self._app[FAKE].behave(behaviour)
        return behaviour

    def forget_cache(self) -> None:
        """Empty the prompt-cache simulation (the stats stay)."""
        self._app[FAKE].cache.clear()

    async def close(self) -> None:
        # Hung handlers (the timeout fault) would hold shutdown for their whole sleep.
        for task in list(self._app[FAKE].tasks):
            task.cancel()
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningFake:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def start_fake(
    wire: str,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    latency_ms: float = 0,
    tokens_per_s: float | None = None,
    error_rate: float = 0.0,
    faults: Sequence[str] = ALL_FAULTS,
    seed: int = 0,
    api_key: str | None = None,
    timeout_hang_s: float = 30.0,
) -> RunningFake:
    """Serve a fake ``wire`` provider on ``host:port`` (port 0 picks a free one)."""
    _check_loopback(host)
    app = build_app(
        wire,
        latency_ms=latency_ms,
        tokens_per_s=tokens_per_s,
        error_rate=error_rate,
        faults=faults,
        seed=seed,
        api_key=api_key,
        timeout_hang_s=timeout_hang_s,
    )
    # handler_cancellation: a client that gives up (timeouts) frees its handler at once.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return RunningFake(runner, app, host, int(bound))
