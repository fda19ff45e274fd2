"""Executing a cascade plan: call each tier's models (in parallel within a tier), run the
tier's checks over every answer seen so far, accept the first that passes, else escalate.
The last tier answers unconditionally, and a streaming client gets it streamed live; an
answer accepted earlier is replayed as a stream, so no rejected cheap answer ever leaks.
Every call is billed and recorded, whatever its verdict."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from thrifty.core.request import ChatRequest
from thrifty.core.response import Completion
from thrifty.engine.account import Outcome
from thrifty.engine.calls import Call
from thrifty.engine.execute import OpenStream
from thrifty.engine.streaming import CompletionStream
from thrifty.errors import ThriftyError
from thrifty.providers.transport import Deadlines
from thrifty.routing.answer import Answer
from thrifty.routing.cascade import fallback_index, rescue_answer_usd
from thrifty.routing.checks import (
    CheckContext,
    VerifierCheck,
    parse_verifier_score,
    run_checks,
    verifier_prompt,
    verifier_question,
)
from thrifty.routing.policy import Plan, Tier

if TYPE_CHECKING:
    from thrifty.engine.gateway import Gateway


class CascadeRunner:
    def __init__(self, gw: Gateway) -> None:
        self._gw = gw

    async def complete(self, plan: Plan, outcome: Outcome,
                       deadlines: Deadlines) -> tuple[Completion, Call]:
        accepted = await self._early_tiers(plan, outcome, deadlines)
        if accepted is not None:
            return accepted
        req, final = outcome.req, plan.tiers[-1].targets
        return await self._gw.resilience.run(
            final[0].model, final, len(plan.tiers) - 1, outcome,
            lambda t: self._gw.executor.complete(req, t, deadlines))

    async def stream(self, plan: Plan, outcome: Outcome,
                     deadlines: Deadlines) -> tuple[OpenStream | CompletionStream, Call]:
        accepted = await self._early_tiers(plan, outcome, deadlines)
        if accepted is not None:
            completion, call = accepted
            return CompletionStream(completion), call
        req, final = outcome.req, plan.tiers[-1].targets
        opened, call = await self._gw.resilience.run(
            final[0].model, final, len(plan.tiers) - 1, outcome,
            lambda t: self._gw.executor.open_stream(req, t, deadlines), streaming=True)
        return opened, call

    async def _early_tiers(self, plan: Plan, outcome: Outcome,
                           deadlines: Deadlines) -> tuple[Completion, Call] | None:
        seen: list[tuple[Answer, Completion, Call]] = []
        for index, tier in enumerate(plan.tiers[:-1]):
            fresh = await self._call_tier(tier, index, outcome, deadlines)
            seen.extend(fresh)
            verdict = await self._judge(tier, index, outcome, seen, fresh, deadlines)
            if verdict is not None:
                return verdict
        outcome.trace.escalation = outcome.trace.escalation or "no early tier"
        return self._over_budget(plan, outcome, seen)

    def _over_budget(self, plan: Plan, outcome: Outcome,
                     seen: list[tuple[Answer, Completion, Call]]) -> tuple[Completion, Call] | None:
        """An earlier answer when the final tier's rescue would cost more than its budget."""
        final = plan.tiers[-1]
        if final.max_answer_usd is None or not seen or not final.targets:
            return None
        usages = [c.usage for _, c, _ in seen if c.usage is not None]
        cost = rescue_answer_usd(final.targets[0], usages)
        if cost is None or cost <= final.max_answer_usd:
            return None
        _, completion, call = seen[fallback_index(plan.tiers[:-1], [a.model for a, _, _ in seen])]
        call.verdict = "accepted: rescue over budget"
        outcome.trace.escalation = (f"final tier skipped: expected ${cost:.4f} over its "
                                    f"${final.max_answer_usd:g} budget")
        return completion, call

    async def _call_tier(self, tier: Tier, index: int, outcome: Outcome,
                         deadlines: Deadlines) -> list[tuple[Answer, Completion, Call]]:
        req = outcome.req

        async def one(target: Any) -> tuple[Completion, Call]:
            return await self._gw.resilience.once(
                target, index, outcome, lambda t: self._gw.executor.complete(req, t, deadlines))

        results = await asyncio.gather(*(one(t) for t in tier.targets), return_exceptions=True)
        fresh = []
        for target, res in zip(tier.targets, results, strict=True):
            if isinstance(res, ThriftyError):
                continue  # recorded as a failed call; the tier goes on without it
            if isinstance(res, BaseException):
                raise res
            completion, call = res
            fresh.append((Answer.from_completion(target.model, completion.body), completion, call))
        return fresh

    async def _judge(self, tier: Tier, index: int, outcome: Outcome,
                     seen: list[tuple[Answer, Completion, Call]],
                     fresh: list[tuple[Answer, Completion, Call]],
                     deadlines: Deadlines) -> tuple[Completion, Call] | None:
        if not fresh:
            outcome.trace.checks.append({"tier": index, "passed": False,
                                         "detail": "every call of the tier failed"})
            outcome.trace.escalation = f"tier {index}: every call failed"
            return None
        body = outcome.req.body
        for answer, _, call in fresh:  # each new answer, judged against all seen so far
            answers = [a for a, _, _ in seen if a is not answer] + [answer]
            score = await self._verify(tier, index, outcome, answer, deadlines)
            passed, results, winner = run_checks(
                tier.checks, CheckContext(body, answers, verifier_score=score))
            outcome.trace.checks.append({
                "tier": index, "model": answer.model, "passed": passed,
                "results": [{"check": r.name, "passed": r.passed, "detail": r.detail}
                            for r in results]})
            if passed:
                chosen = winner or answer
                for a, completion, c in seen:
                    if a is chosen:
                        c.verdict = "accepted"
                        return completion, c
                call.verdict = "accepted"
                return next((comp, c) for a, comp, c in seen if c is call)
            failed = ", ".join(r.name for r in results if not r.passed) or "checks"
            call.verdict = f"escalated: {failed}"
            outcome.trace.escalation = f"tier {index} ({answer.model}): {failed} failed"
        return None

    async def _verify(self, tier: Tier, index: int, outcome: Outcome, answer: Answer,
                      deadlines: Deadlines) -> float | None:
        """A verifier check's model call (billed like any call); None without one."""
        check = next((c for c in tier.checks if isinstance(c, VerifierCheck)), None)
        if check is None:
            return None
        cfg = check.config
        target = self._gw.routes.resolve(cfg.model).targets[0]
        question = verifier_question(outcome.req.body)
        body = {"model": cfg.model, "max_tokens": 64, "temperature": 0,
                "messages": verifier_prompt(question, answer.text, template=cfg.prompt,
                                            system=cfg.system)}
        req = ChatRequest(body=body, model=cfg.model, stream=False, include_usage=False,
                          request_id=outcome.req.request_id)
        try:
            completion, call = await self._gw.attempt(
                target, index, outcome, lambda t: self._gw.executor.complete(req, t, deadlines))
        except ThriftyError:
            return None  # the verifier failed: the check fails, the cascade escalates
        call.verdict = "verifier"
        reply = Answer.from_completion(cfg.model, completion.body).text
        return parse_verifier_score(reply)
