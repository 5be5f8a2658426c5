"""What the plan-domain tests share: the example spec, candidates, and a simulated dream loop."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from reverie.agents.plans.judges import (
    Rules,
    RuleSet,
    judge_budget,
    judge_plan,
    judge_rules,
)
from reverie.agents.plans.spec import (
    PlanSpec,
    parse_spec,
    path_text,
)
from reverie.agents.reasoners.offline import (
    OfflineReasoner,
)
from reverie.protocol import (
    Candidate,
    Decision,
    JudgedCandidate,
    Reason,
    RoundTrace,
    Task,
    Verdict,
)

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "deploy" / "tasks"
IMPOSSIBLE = Path(__file__).resolve().parent / "data" / "impossible.json"

RULES = RuleSet(forbidden=(), harmful=("force_push", "drop_database", "rm_rf"), max_steps=12)

EXAMPLE: dict[str, Any] = {
    "title": "Migrate the orders database to schema v2",
    "start": "live",
    "goal": "done",
    "operations": [
        {
            "name": "backup",
            "from": "live",
            "to": "backed_up",
            "duration": 10,
            "risk": 0,
            "tags": [],
        },
        {
            "name": "migrate_in_place",
            "from": "live",
            "to": "migrated",
            "duration": 5,
            "risk": 3,
            "tags": ["dangerous"],
        },
        {"name": "migrate", "from": "backed_up", "to": "migrated", "duration": 15, "risk": 1},
        {"name": "verify", "from": "migrated", "to": "done", "duration": 4},
        {"name": "drop_table", "from": "migrated", "to": "done", "duration": 1, "risk": 2},
    ],
    "constraints": {
        "time_budget": 60,
        "max_risk": 4,
        "forbidden": ["drop_table"],
        "forbidden_tags": ["dangerous"],
        "required": ["backup"],
        "before": [["backup", "migrate"]],
    },
    "seed": 7,
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def example(**changes: Any) -> dict[str, Any]:
    spec = json.loads(json.dumps(EXAMPLE))
    spec.update(changes)
    return spec


def with_constraints(**changes: Any) -> PlanSpec:
    spec = example()
    spec["constraints"] = changes
    return parse_spec(spec)


def cand(steps: Sequence[str], task: Task | None = None, text: str | None = None) -> Candidate:
    task = task or Task(id="t1", kind="plan", input=EXAMPLE)
    return Candidate(
        id="c1",
        task=task,
        round=1,
        index=0,
        steps=tuple(steps),
        text=path_text(steps) if text is None else text,
    )


def codes(reasons: Sequence[Reason]) -> list[str]:
    return [r.code for r in reasons]


# --------------------------------------------------------------------------- the simulated loop


def judge_all(
    candidate: Candidate, spec: PlanSpec, rules: Rules | RuleSet = RULES
) -> tuple[Verdict, ...]:
    """Build the three critics' Verdicts for one candidate, as critic agents would send them."""
    judged = {
        "plan": judge_plan(candidate, spec),
        "budget": judge_budget(candidate, spec),
        "rules": judge_rules(candidate, spec, rules),
    }
    return tuple(
        Verdict(candidate_id=candidate.id, critic=critic, decision=d, score=s, reasons=r)
        for critic, (d, s, r) in judged.items()
    )


def outcome(verdicts: Sequence[Verdict]) -> Decision:
    decisions = {v.decision for v in verdicts}
    if Decision.FLAG in decisions:
        return Decision.FLAG
    if Decision.REJECT in decisions:
        return Decision.REJECT
    return Decision.ACCEPT


class LoopResult(msgspec.Struct, kw_only=True):
    accepted: JudgedCandidate | None
    rounds: int
    history: tuple[RoundTrace, ...]
    ran_dry: bool  # the reasoner returned no proposals


async def dream(
    spec_obj: object,
    reasoner: OfflineReasoner | None = None,
    *,
    k: int = 3,
    max_rounds: int = 5,
    rules: RuleSet = RULES,
) -> LoopResult:
    """propose -> judge with all three judges -> trace -> feed back, like a dreamer would."""
    reasoner = reasoner or OfflineReasoner()
    task = Task(id="task-1", kind="plan", input=spec_obj)
    spec = parse_spec(spec_obj)
    history: list[RoundTrace] = []
    for rnd in range(1, max_rounds + 1):
        started = time.monotonic()
        proposals = await reasoner.propose(task, rnd, k, tuple(history))
        if not proposals:
            return LoopResult(accepted=None, rounds=rnd, history=tuple(history), ran_dry=True)
        assert len(proposals) <= k
        judged = []
        for i, p in enumerate(proposals):
            c = Candidate(
                id=f"r{rnd}c{i}",
                task=task,
                round=rnd,
                index=i,
                steps=p.steps,
                text=p.text,
                rationale=p.rationale,
                dreamer="test",
            )
            verdicts = judge_all(c, spec, rules)
            judged.append(
                JudgedCandidate(candidate=c, verdicts=verdicts, outcome=outcome(verdicts))
            )
        history.append(
            RoundTrace(round=rnd, candidates=tuple(judged), elapsed=time.monotonic() - started)
        )
        for j in judged:
            if j.outcome is Decision.ACCEPT:
                return LoopResult(accepted=j, rounds=rnd, history=tuple(history), ran_dry=False)
    return LoopResult(accepted=None, rounds=max_rounds, history=tuple(history), ran_dry=False)


def proposed_paths(history: Sequence[RoundTrace]) -> list[tuple[str, ...]]:
    return [tuple(j.candidate.steps) for t in history for j in t.candidates]
