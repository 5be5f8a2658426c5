"""Critic agents: each judges every candidate against its constraints and replies a Verdict.

The judging itself lives in `judges.py` (pure functions); these classes only wire it to the
bus. Replicas of one critic share a queue group, so each candidate is judged once per kind.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

from reverie.protocol import Candidate, Decision, Reason, Verdict
from reverie.runtime import Agent, handler

from .plans.judges import (
    Judgement,
    RuleSet,
    compile_rules,
    judge_budget,
    judge_plan,
    judge_rules,
)
from .plans.spec import PlanSpec, PlanSpecError, parse_spec

__all__ = ["PLAN_KIND", "BudgetCritic", "PlanCritic", "RuleCritic"]

PLAN_KIND = "plan"


class _SpecCache:
    """Parsed plan specs by task id: a round sends K candidates of one task, parse once."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[str, PlanSpec] = OrderedDict()
        self._size = size

    def get(self, cand: Candidate) -> PlanSpec:
        spec = self._items.get(cand.task.id)
        if spec is None:
            spec = parse_spec(cand.task.input)
            self._items[cand.task.id] = spec
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return spec


class _Critic(Agent):
    role: ClassVar[str] = "critic"

    async def on_start(self) -> None:
        self._specs = _SpecCache()

    def evaluate(self, cand: Candidate) -> Judgement:
        raise NotImplementedError

    @handler("dream.*.cand", concurrency=16)
    async def judge(self, cand: Candidate) -> Verdict:
        try:
            decision, score, reasons = self.evaluate(cand)
        except PlanSpecError as exc:
            decision, score = Decision.REJECT, 0.0
            reasons = (Reason(code="malformed", text=f"the task's plan spec is invalid: {exc}"),)
        return Verdict(candidate_id=cand.id, critic=self.ctx.name, decision=decision, score=score,
                       reasons=reasons)


class RuleCritic(_Critic):
    """Forbidden / harmful / required patterns and size limits from the deploy config."""

    Options = RuleSet

    @classmethod
    def check_options(cls, options: RuleSet) -> None:
        compile_rules(options)

    async def on_start(self) -> None:
        await super().on_start()
        self.rules = compile_rules(self.options)

    def evaluate(self, cand: Candidate) -> Judgement:
        spec = self._specs.get(cand) if cand.task.kind == PLAN_KIND else None
        return judge_rules(cand, spec, self.rules)


class PlanCritic(_Critic):
    """A plan must walk from start to goal and keep required steps in the required order."""

    def evaluate(self, cand: Candidate) -> Judgement:
        if cand.task.kind != PLAN_KIND:
            return Decision.ACCEPT, 1.0, ()
        return judge_plan(cand, self._specs.get(cand))


class BudgetCritic(_Critic):
    """A plan must fit the time budget and the risk limit, and avoid forbidden risk tags."""

    def evaluate(self, cand: Candidate) -> Judgement:
        if cand.task.kind != PLAN_KIND:
            return Decision.ACCEPT, 1.0, ()
        return judge_budget(cand, self._specs.get(cand))
