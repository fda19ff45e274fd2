"""Cascade checks: pure functions over a tier's answers that decide whether a cheap answer
is accepted or the cascade escalates. Each check has a strict config model and returns a
:class:`CheckResult`; :func:`run_checks` runs a tier's list and :func:`parse_checks` builds
one from config. No I/O: the verifier check reads a score the executor obtained.

    checks: [format, truncation, refusal, {hedging: {max_score: 0.5}},
             {agreement: {min_votes: 2, mode: exact}}, {logprob: {threshold: -0.5}},
             {verifier: {model: gpt-4o-mini, threshold: 0.8}}]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thrifty.errors import ConfigError
from thrifty.routing.answer import Answer
from thrifty.routing.checks_format import format_problems
from thrifty.routing.refusal import hedging_score, is_refusal
from thrifty.routing.verifier import (
    DEFAULT_SYSTEM,
    DEFAULT_TEMPLATE,
    calibrate_verifier_threshold,
    parse_verifier_score,
    verifier_passes,
    verifier_prompt,
    verifier_question,
)
from thrifty.routing.voting import Embedder, VoteMode, vote

__all__ = [
    "AgreementCheck", "AgreementConfig", "Check", "CheckContext", "CheckResult", "Embedder",
    "FormatCheck", "FormatConfig", "HedgingCheck", "HedgingConfig", "LogprobCheck",
    "LogprobConfig", "RefusalCheck", "RefusalConfig", "TruncationCheck", "TruncationConfig",
    "VerifierCheck", "VerifierConfig", "calibrate_verifier_threshold", "parse_checks",
    "parse_verifier_score", "run_checks", "verifier_passes", "verifier_prompt",
    "verifier_question",
]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    score: float | None = None
    winner: Answer | None = None
    """Agreement only: the majority's representative, the answer to accept."""


@dataclass(frozen=True)
class CheckContext:
    request_body: Mapping[str, Any]
    """The OpenAI request (its ``response_format`` and ``tools`` schemas)."""
    answers: Sequence[Answer]
    """Every answer so far, earlier tiers first; the candidate is the last."""
    tier_start: int = 0
    """Index in ``answers`` of the current tier's first answer."""
    verifier_score: float | None = None
    """The verifier model's parsed score for the candidate, when the executor asked one."""

    @property
    def candidate(self) -> Answer:
        return self.answers[-1]


class Check(Protocol):
    @property
    def name(self) -> str: ...

    def run(self, ctx: CheckContext) -> CheckResult: ...


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormatConfig(_Config):
    json_mode: bool = True
    """The text parses as JSON when ``response_format`` asked for JSON (a fenced answer
    fails: JSON mode promises bare JSON)."""
    json_schema: bool = True
    """...and validates against ``response_format.json_schema.schema``."""
    tool_calls: bool = True
    """Tool-call arguments are JSON objects valid against the tool's ``parameters``."""


class TruncationConfig(_Config):
    fail_on: tuple[str, ...] = ("length",)
    """The finish reasons that mean the answer was cut off."""


class RefusalConfig(_Config):
    pass


class HedgingConfig(_Config):
    max_score: float = Field(default=0.5, ge=0, le=1)


class AgreementConfig(_Config):
    min_votes: int = Field(default=2, ge=2)
    mode: VoteMode = "auto"
    threshold: float = Field(default=0.8, ge=0, le=1)
    """Semantic mode: the similarity at which two free-text answers count as the same.
    Not calibrated on data yet: lexical similarity gives paraphrases about 0.85 and
    unrelated texts about 0.1, but two answers that differ in one key word also ~0.85."""
    earlier_tiers: bool = True
    """Earlier (escalated) tiers' answers vote too, not only the current tier's."""
    short_chars: int = Field(default=40, ge=1)
    """Auto mode: final answers shorter than this are compared exactly."""


class LogprobConfig(_Config):
    threshold: float = Field(default=-0.5, le=0)
    aggregate: Literal["mean", "min"] = "mean"
    require: bool = False
    """Fail (instead of skip) when the provider returned no logprobs."""


class VerifierConfig(_Config):
    model: str = Field(min_length=1)
    """The public model name that verifies (the executor calls it)."""
    prompt: str = DEFAULT_TEMPLATE
    """User message template with ``{question}`` and ``{answer}``."""
    system: str | None = DEFAULT_SYSTEM
    threshold: float = Field(default=0.5, ge=0, le=1)
    """Calibrate it offline with ``calibrate_verifier_threshold``."""


@dataclass(frozen=True, slots=True)
class FormatCheck:
    config: FormatConfig = field(default_factory=FormatConfig)
    name: str = field(default="format", init=False)

    def run(self, ctx: CheckContext) -> CheckResult:
        c = self.config
        problems = format_problems(ctx.candidate, ctx.request_body, json_mode=c.json_mode,
                                   json_schema=c.json_schema, tool_calls=c.tool_calls)
        if problems is None:
            return CheckResult(self.name, True, "no JSON mode or tools requested")
        return CheckResult(self.name, not problems, "; ".join(problems) or "ok")


@dataclass(frozen=True, slots=True)
class TruncationCheck:
    config: TruncationConfig = field(default_factory=TruncationConfig)
    name: str = field(default="truncation", init=False)

    def run(self, ctx: CheckContext) -> CheckResult:
        reason = ctx.candidate.finish_reason
        cut = reason in self.config.fail_on
        return CheckResult(self.name, not cut, f"finish_reason {reason!r}")


@dataclass(frozen=True, slots=True)
class RefusalCheck:
    config: RefusalConfig = field(default_factory=RefusalConfig)
    name: str = field(default="refusal", init=False)

    def run(self, ctx: CheckContext) -> CheckResult:
        refused = is_refusal(ctx.candidate.text)
        return CheckResult(self.name, not refused, "refused" if refused else "no refusal")


@dataclass(frozen=True, slots=True)
class HedgingCheck:
    config: HedgingConfig = field(default_factory=HedgingConfig)
    name: str = field(default="hedging", init=False)

    def run(self, ctx: CheckContext) -> CheckResult:
        score = hedging_score(ctx.candidate.text)
        ok = score <= self.config.max_score
        return CheckResult(self.name, ok, f"hedging {score:.2f} (max {self.config.max_score})",
                           score)


@dataclass(frozen=True, slots=True)
class AgreementCheck:
    config: AgreementConfig = field(default_factory=AgreementConfig)
    embedder: Embedder | None = None
    """Semantic mode's sentence embedder; without one, a lexical similarity is used."""
    name: str = field(default="agreement", init=False)

    def run(self, ctx: CheckContext) -> CheckResult:
        c = self.config
        start = 0 if c.earlier_tiers else min(ctx.tier_start, len(ctx.answers) - 1)
        voters = list(ctx.answers[start:])
        if not voters:
            return CheckResult(self.name, False, "no answers to compare")
        result = vote(voters, ctx.request_body, mode=c.mode, threshold=c.threshold,
                      short_chars=c.short_chars, embedder=self.embedder)
        size = len(result.members)
        ok = size >= c.min_votes
        detail = (f"{size} of {len(voters)} answers agree ({result.mode}"
                  f"{'' if ok else f'; need {c.min_votes}'}): {result.summary}")
        return CheckResult(self.name, ok, detail, size / len(voters),
                           voters[result.members[-1]] if ok else None)


@dataclass(frozen=True, slots=True)
class LogprobCheck:
    config: LogprobConfig = field(default_factory=LogprobConfig)
    name: str = field(default="logprob", init=False)

    def run(self, ctx: CheckContext) -> CheckResult:
        c = self.config
        values = ctx.candidate.logprobs
        if not values:
            return CheckResult(self.name, not c.require,
                               "no logprobs returned" + (" (required)" if c.require
                                                         else "; skipped"))
        score = min(values) if c.aggregate == "min" else sum(values) / len(values)
        return CheckResult(self.name, score >= c.threshold,
                           f"{c.aggregate} logprob {score:.3f} (threshold {c.threshold})", score)


@dataclass(frozen=True, slots=True)
class VerifierCheck:
    """Passes when the executor's verifier call scored the candidate at the threshold."""

    config: VerifierConfig
    name: str = field(default="verifier", init=False)

    def run(self, ctx: CheckContext) -> CheckResult:
        score = ctx.verifier_score
        if score is None:
            return CheckResult(self.name, False, f"no score from verifier {self.config.model}")
        ok = verifier_passes(score, self.config.threshold)
        return CheckResult(self.name, ok,
                           f"{self.config.model} scored {score:.2f} "
                           f"(threshold {self.config.threshold})", score)


def run_checks(checks: Sequence[Check], ctx: CheckContext,
               ) -> tuple[bool, list[CheckResult], Answer | None]:
    """Run every check; all must pass. Agreement runs first, and the other checks judge
    the answer it elected (the majority's representative), which is the answer returned;
    without agreement they judge, and accept, the candidate. None when any check fails."""
    if not ctx.answers:
        return False, [CheckResult("answers", False, "no answer to check")], None
    results: list[CheckResult] = []
    accepted = ctx.candidate
    for check in checks:
        if isinstance(check, AgreementCheck):
            result = check.run(ctx)
            results.append(result)
            accepted = result.winner or accepted
    judged = ctx if accepted is ctx.candidate else dataclasses.replace(
        ctx, answers=(*[a for a in ctx.answers if a is not accepted], accepted))
    results.extend(c.run(judged) for c in checks if not isinstance(c, AgreementCheck))
    ok = all(r.passed for r in results)
    return ok, results, accepted if ok else None


_CHECKS: dict[str, tuple[type[_Config], Callable[[Any], Check]]] = {
    "format": (FormatConfig, FormatCheck),
    "truncation": (TruncationConfig, TruncationCheck),
    "refusal": (RefusalConfig, RefusalCheck),
    "hedging": (HedgingConfig, HedgingCheck),
    "agreement": (AgreementConfig, AgreementCheck),
    "logprob": (LogprobConfig, LogprobCheck),
    "verifier": (VerifierConfig, VerifierCheck),
}


def parse_checks(raw: Sequence[str | Mapping[str, Any]], *, where: str) -> tuple[Check, ...]:
    """Build checks from config: each item a name (``"format"``) or a one-key mapping
    (``{"hedging": {"max_score": 0.4}}``). Errors name ``where[index].check.key``."""
    return tuple(_parse_one(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _parse_one(item: str | Mapping[str, Any], at: str) -> Check:
    options: object
    if isinstance(item, str):
        name, options = item, {}
    elif isinstance(item, Mapping) and len(item) == 1:
        ((name, options),) = item.items()
        options = {} if options is None else options
    else:
        raise ConfigError(f"{at}: a check is a name or a one-key mapping like "
                          f"{{hedging: {{max_score: 0.5}}}}, got {item!r}")
    entry = _CHECKS.get(name)
    if entry is None:
        raise ConfigError(f"{at}: unknown check {name!r}; known: {', '.join(_CHECKS)}")
    if not isinstance(options, Mapping):
        raise ConfigError(f"{at}.{name}: options must be a mapping, got {options!r}")
    config_type, check_type = entry
    try:
        config = config_type.model_validate(options)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or name
        got = f" (got {err['input']!r})" if key in options else ""
        fix = (f"; {name} takes {', '.join(config_type.model_fields) or 'no options'}"
               if err["type"] == "extra_forbidden" else "")
        raise ConfigError(f"{at}.{name}.{key}: {err['msg']}{got}{fix}") from None
    return check_type(config)
