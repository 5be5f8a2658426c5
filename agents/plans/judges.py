"""Pure critic judgements: a candidate in, `(decision, score, reasons)` out.

Kept free of any bus or agent code so each rule is testable on its own and a critic agent is
only a thin wrapper. Every reason carries a machine-readable `code` (and `ops`/`limit`/`value`
where they apply) because the reasoner steers its next round by them, not by the prose.

Scores are the fraction of a judge's checks the candidate passes (1.0 = perfect), so among
rejected candidates the dreamer can still tell a near miss from a wreck. FLAG scores 0.0.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

import msgspec

from reverie.protocol import Candidate, Decision, Reason, ReverieError

from .spec import PlanSpec, evaluate, split_validation_error

__all__ = [
    "RulePatternError",
    "RuleSet",
    "RuleSetError",
    "Rules",
    "compile_rules",
    "judge_budget",
    "judge_plan",
    "judge_rules",
    "parse_rules",
]

Judgement = tuple[Decision, float, tuple[Reason, ...]]
"""What every judge returns: the decision, a score in [0, 1], and the findings behind it."""


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _verdict(reasons: Sequence[Reason], failed: int, checks: int) -> Judgement:
    if not reasons:
        return Decision.ACCEPT, 1.0, ()
    score = max(0.0, 1.0 - failed / max(checks, 1))
    return Decision.REJECT, score, tuple(reasons)


def _fmt(x: float) -> str:
    return f"{x:g}"


# --------------------------------------------------------------------------- plan structure


def judge_plan(candidate: Candidate, spec: PlanSpec) -> Judgement:
    """Is the path walkable to the goal, with every required op, in the required order?"""
    ev = evaluate(spec, candidate.steps)
    c = spec.constraints
    reasons: list[Reason] = list(ev.problems)
    failed = 1 if ev.problems else 0
    steps = candidate.steps
    for name in c.required:
        if name not in steps:
            reasons.append(
                Reason(
                    code="missing_required",
                    text=f"required operation {name!r} is missing",
                    ops=(name,),
                )
            )
            failed += 1
    for a, b in c.before:
        if b not in steps:
            continue
        if a not in steps:
            text = f"{b!r} requires {a!r} before it, but {a!r} is missing"
        elif steps.index(a) > steps.index(b):
            text = f"{a!r} must come before {b!r}"
        else:
            continue
        reasons.append(Reason(code="order", text=text, ops=(a, b)))
        failed += 1
    return _verdict(reasons, failed, 1 + len(c.required) + len(c.before))


# --------------------------------------------------------------------------- budget and risk


def judge_budget(candidate: Candidate, spec: PlanSpec) -> Judgement:
    """Does the path fit the time budget and the risk ceiling, avoiding forbidden tags?"""
    ev = evaluate(spec, candidate.steps)
    c = spec.constraints
    reasons: list[Reason] = []
    failed = 0
    checks = 1 + (c.time_budget is not None) + (c.max_risk is not None)
    if c.time_budget is not None and ev.duration > c.time_budget:
        reasons.append(
            Reason(
                code="over_budget",
                text=f"takes {_fmt(ev.duration)}, over the time budget of {_fmt(c.time_budget)}",
                limit=c.time_budget,
                value=ev.duration,
            )
        )
        failed += 1
    if c.max_risk is not None and ev.risk > c.max_risk:
        risky = _unique(op.name for op in ev.operations if op.risk > 0)
        reasons.append(
            Reason(
                code="risk",
                text=f"total risk {_fmt(ev.risk)} exceeds the maximum of {_fmt(c.max_risk)}",
                ops=risky,
                limit=c.max_risk,
                value=ev.risk,
            )
        )
        failed += 1
    banned_tags = set(c.forbidden_tags)
    tagged = False
    for op in ev.operations:
        bad = [t for t in op.tags if t in banned_tags]
        if bad:
            reasons.append(
                Reason(code="risk", text=f"{op.name!r} is tagged {', '.join(bad)}", ops=(op.name,))
            )
            tagged = True
    return _verdict(reasons, failed + tagged, checks)


# --------------------------------------------------------------------------- configured rules


class RuleSetError(ReverieError):
    """A rule configuration that cannot be used; `path` locates it like `PlanSpecError`."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class RulePatternError(RuleSetError):
    """A pattern in a `RuleSet` that is not a valid regular expression; carries `.pattern`."""

    def __init__(self, path: str, pattern: str, detail: str) -> None:
        super().__init__(path, f"invalid pattern {pattern!r}: {detail}")
        self.pattern = pattern


class RuleSet(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rule-critic configuration, as written in TOML.

    Patterns are regular expressions searched (not fully matched) in each step name and in the
    candidate text, case-insensitively unless `ignore_case = false`. A `harmful` match FLAGs the
    candidate: it is quarantined, which is stronger than any rejection.
    """

    forbidden: tuple[str, ...] = ()
    harmful: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    max_steps: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_chars: Annotated[int, msgspec.Meta(ge=0)] | None = None
    ignore_case: bool = True


def parse_rules(obj: object) -> RuleSet:
    """Validate a rules table (e.g. `[critics.rules]` of a loaded TOML file) into a `RuleSet`.

    Accepts TOML text (str or bytes) too. Patterns are compiled here as well, so a bad regex
    fails at configuration time rather than on the first candidate.
    """
    try:
        if isinstance(obj, (str, bytes, bytearray)):
            ruleset = msgspec.toml.decode(obj, type=RuleSet)
        else:
            ruleset = msgspec.convert(obj, RuleSet)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise RuleSetError(*split_validation_error(exc)) from None
    compile_rules(ruleset)
    return ruleset


@dataclass(frozen=True, slots=True)
class Rules:
    """A `RuleSet` with its patterns compiled; build it with `compile_rules`."""

    source: RuleSet
    forbidden: tuple[re.Pattern[str], ...]
    harmful: tuple[re.Pattern[str], ...]
    required: tuple[re.Pattern[str], ...]


@functools.lru_cache(maxsize=64)
def compile_rules(ruleset: RuleSet) -> Rules:
    """Compile every pattern once (cached per `RuleSet`); a bad one raises `RulePatternError`."""
    flags = re.IGNORECASE if ruleset.ignore_case else 0

    def compile_all(field: str, patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
        out = []
        for i, pattern in enumerate(patterns):
            try:
                out.append(re.compile(pattern, flags))
            except re.error as exc:
                raise RulePatternError(f"$.{field}[{i}]", pattern, str(exc)) from None
        return tuple(out)

    return Rules(
        source=ruleset,
        forbidden=compile_all("forbidden", ruleset.forbidden),
        harmful=compile_all("harmful", ruleset.harmful),
        required=compile_all("required", ruleset.required),
    )


def judge_rules(candidate: Candidate, spec: PlanSpec | None, rules: Rules | RuleSet) -> Judgement:
    """Configured patterns and limits, plus the spec's own forbidden operations (if a spec).

    Works for any task kind: with `spec=None` only `candidate.steps` and `candidate.text` are
    looked at, and a candidate without steps has its text checked against `required`.
    """
    compiled = rules if isinstance(rules, Rules) else compile_rules(rules)
    source = compiled.source
    steps = candidate.steps
    text = candidate.text
    reasons: list[Reason] = []
    failed = 0
    checks = 0

    harmful = False
    for pattern in compiled.harmful:
        checks += 1
        hits = _unique(s for s in steps if pattern.search(s))
        if hits or pattern.search(text):
            where = f"steps {', '.join(hits)}" if hits else "the text"
            reasons.append(
                Reason(
                    code="harmful",
                    text=f"{where} match harmful pattern {pattern.pattern!r}",
                    ops=hits,
                )
            )
            harmful = True
            failed += 1

    for pattern in compiled.forbidden:
        checks += 1
        hits = _unique(s for s in steps if pattern.search(s))
        if hits:
            reasons.append(
                Reason(
                    code="forbidden_op",
                    text=f"steps {', '.join(hits)} match forbidden pattern {pattern.pattern!r}",
                    ops=hits,
                )
            )
            failed += 1
        elif pattern.search(text):
            reasons.append(
                Reason(
                    code="pattern", text=f"the text matches forbidden pattern {pattern.pattern!r}"
                )
            )
            failed += 1

    if spec is not None:
        for name in spec.constraints.forbidden:
            checks += 1
            if name in steps:
                reasons.append(
                    Reason(
                        code="forbidden_op", text=f"operation {name!r} is forbidden", ops=(name,)
                    )
                )
                failed += 1

    targets = steps if steps else (text,)
    for pattern in compiled.required:
        checks += 1
        if not any(pattern.search(t) for t in targets):
            # Name the operations that would satisfy the rule, so a reasoner can pick one.
            options = (
                tuple(op.name for op in spec.operations if pattern.search(op.name)) if spec else ()
            )
            reasons.append(
                Reason(
                    code="missing_required",
                    text=f"no step matches required pattern {pattern.pattern!r}",
                    ops=options,
                )
            )
            failed += 1

    if source.max_steps is not None:
        checks += 1
        if len(steps) > source.max_steps:
            reasons.append(
                Reason(
                    code="too_long",
                    text=f"{len(steps)} steps, more than the maximum of {source.max_steps}",
                    limit=source.max_steps,
                    value=len(steps),
                )
            )
            failed += 1
    if source.max_chars is not None:
        checks += 1
        if len(text) > source.max_chars:
            reasons.append(
                Reason(
                    code="too_long",
                    text=f"{len(text)} characters, more than the maximum of {source.max_chars}",
                    limit=source.max_chars,
                    value=len(text),
                )
            )
            failed += 1

    if harmful:
        return Decision.FLAG, 0.0, tuple(reasons)
    return _verdict(reasons, failed, checks)
