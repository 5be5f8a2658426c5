"""The offline reasoner, including a simulated dream loop."""

from __future__ import annotations

import time
from typing import Any

import pytest

from reverie.agents.plans.judges import (
    RuleSet,
)
from reverie.agents.plans.spec import (
    PlanSpecError,
    evaluate,
    parse_spec,
)
from reverie.agents.reasoners.base import Proposal, Reasoner
from reverie.agents.reasoners.offline import (
    LearnedConstraints,
    OfflineReasoner,
    PlanPath,
    enumerate_paths,
)
from reverie.protocol import (
    Decision,
    JudgedCandidate,
    Reason,
    RoundTrace,
    Task,
    Verdict,
)

from .plan_helpers import (
    EXAMPLE,
    IMPOSSIBLE,
    RULES,
    TASKS,
    cand,
    dream,
    example,
    judge_all,
    load,
    outcome,
    proposed_paths,
)

# --------------------------------------------------------------------------- offline reasoner


def tie_spec(seed: int = 0) -> dict[str, Any]:
    """Six equal-duration paths a -> m_i -> b; only the seeded tiebreak orders them."""
    ops = []
    for i in range(6):
        ops.append({"name": f"up{i}", "from": "a", "to": f"m{i}", "duration": 1})
        ops.append({"name": f"down{i}", "from": f"m{i}", "to": "b", "duration": 2})
    return {"start": "a", "goal": "b", "operations": ops, "seed": seed}


def test_offline_reasoner_satisfies_protocol() -> None:
    assert isinstance(OfflineReasoner(), Reasoner)


async def test_round1_is_greedy_by_duration() -> None:
    props = await OfflineReasoner().propose(Task(id="t", kind="plan", input=EXAMPLE), 1, 2, ())
    assert [p.steps for p in props] == [
        ("migrate_in_place", "drop_table"),
        ("migrate_in_place", "verify"),
    ]
    assert isinstance(props[0], Proposal)
    assert props[0].text == "migrate_in_place -> drop_table"
    assert props[0].answer == {
        "steps": ["migrate_in_place", "drop_table"],
        "duration": 6.0,
        "risk": 5.0,
    }
    assert "fastest" in props[0].rationale


async def test_offline_reasoner_is_deterministic_and_seeded() -> None:
    task = Task(id="t", kind="plan", input=tie_spec())
    a = await OfflineReasoner(seed=1).propose(task, 1, 6, ())
    b = await OfflineReasoner(seed=1).propose(task, 1, 6, ())
    assert a == b
    orders = set()
    for seed in range(8):
        props = await OfflineReasoner(seed=seed).propose(task, 1, 6, ())
        assert len(props) == 6
        orders.add(tuple(p.steps for p in props))
    assert len(orders) > 1  # the seed changes the order of equal-duration paths
    # the spec's own seed feeds the tiebreak too
    spec_orders = {
        tuple(
            p.steps
            for p in await OfflineReasoner().propose(
                Task(id="t", kind="plan", input=tie_spec(s)), 1, 6, ()
            )
        )
        for s in range(8)
    }
    assert len(spec_orders) > 1


async def test_offline_reasoner_rejects_bad_input() -> None:
    with pytest.raises(PlanSpecError):
        await OfflineReasoner().propose(Task(id="t", kind="plan", input="what is love"), 1, 3, ())


async def test_offline_reasoner_k_and_exhaustion() -> None:
    task = Task(id="t", kind="plan", input=EXAMPLE)
    assert await OfflineReasoner().propose(task, 1, 0, ()) == []
    # the example has four paths; asking for ten yields four
    assert len(await OfflineReasoner().propose(task, 1, 10, ())) == 4


def test_enumeration_is_bounded_on_pathological_graphs() -> None:
    # A complete graph on 14 states has astronomically many simple paths.
    n = 14
    ops = [
        {"name": f"s{i}_s{j}", "from": f"s{i}", "to": f"s{j}", "duration": 1}
        for i in range(n)
        for j in range(n)
        if i != j
    ]
    spec = parse_spec({"start": "s0", "goal": f"s{n - 1}", "operations": ops})
    started = time.monotonic()
    paths = enumerate_paths(spec, 12)
    assert 0 < len(paths) <= 5000
    assert time.monotonic() - started < 10
    assert all(len(set(p.steps)) == len(p.steps) for p in paths)


async def test_latency_is_simulated() -> None:
    slow = example(simulate_latency=0.2)
    started = time.monotonic()
    await OfflineReasoner().propose(Task(id="t", kind="plan", input=slow), 1, 1, ())
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    await OfflineReasoner(latency=0.1).propose(Task(id="t", kind="plan", input=EXAMPLE), 1, 1, ())
    assert time.monotonic() - started >= 0.1


async def test_reasoner_learns_from_reasons() -> None:
    """Each reason code becomes a constraint the next round honours."""
    task = Task(id="t", kind="plan", input=EXAMPLE)
    spec = parse_spec(EXAMPLE)
    first = await OfflineReasoner().propose(task, 1, 1, ())
    c = cand(first[0].steps, task)
    verdicts = judge_all(c, spec)
    trace = RoundTrace(
        round=1,
        candidates=(JudgedCandidate(candidate=c, verdicts=verdicts, outcome=outcome(verdicts)),),
        elapsed=0,
    )
    second = await OfflineReasoner().propose(task, 2, 3, (trace,))
    assert [p.steps for p in second] == [("backup", "migrate", "verify")]
    assert "taught in round 1: avoid migrate_in_place" in second[0].rationale


def path(*steps: str, duration: float = 10, risk: float = 0) -> PlanPath:
    return PlanPath(steps=steps, duration=duration, risk=risk)


@pytest.mark.parametrize(
    ("reason", "rejected", "admitted"),
    [
        (Reason(code="forbidden_op", text="", ops=("x",)), path("a", "x"), path("a", "b")),
        (Reason(code="harmful", text="", ops=("x",)), path("x"), path("b")),
        (Reason(code="risk", text="", ops=("x",)), path("x"), path("b", risk=9)),  # tag: ban
        (
            Reason(code="risk", text="", ops=("x",), limit=4, value=6),
            path("b", risk=5),
            path("x", risk=4),
        ),
        (Reason(code="missing_required", text="", ops=("r",)), path("a"), path("a", "r")),
        (Reason(code="missing_required", text="", ops=("r1", "r2")), path("a"), path("r2")),
        (Reason(code="order", text="", ops=("a", "b")), path("b", "a"), path("a", "b")),
        (Reason(code="order", text="", ops=("a", "b")), path("c", "b"), path("c", "d")),
        (
            Reason(code="over_budget", text="", limit=20, value=30),
            path("a", duration=21),
            path("a", duration=20),
        ),
        (Reason(code="too_long", text="", limit=2, value=3), path("a", "b", "c"), path("a", "b")),
        (Reason(code="too_long", text="", limit=6, value=9), path("abcd", "e"), path("abcdef")),
    ],
)
def test_each_reason_code_is_learned(
    reason: Reason, rejected: PlanPath, admitted: PlanPath
) -> None:
    learned = LearnedConstraints()
    learned.learn(reason, ("p", "q", "r"), round=1)
    assert not learned.admits(rejected)
    assert learned.admits(admitted)
    assert learned.describe()


def test_learned_limits_keep_the_tightest() -> None:
    learned = LearnedConstraints()
    learned.learn(Reason(code="over_budget", text="", limit=30, value=40), ("a",), 1)
    learned.learn(Reason(code="over_budget", text="", limit=20, value=25), ("b",), 2)
    learned.learn(Reason(code="over_budget", text="", limit=25, value=26), ("c",), 3)
    assert learned.max_duration == (20, 2)


# --------------------------------------------------------------------------- dream loops


async def test_db_migration_round1_fully_rejected() -> None:
    spec_obj = load(TASKS / "db-migration.json")
    spec = parse_spec(spec_obj)
    task = Task(id="t", kind="plan", input=spec_obj)
    props = await OfflineReasoner().propose(task, 1, 3, ())
    assert len(props) == 3
    for p in props:
        verdicts = judge_all(cand(p.steps, task), spec)
        assert outcome(verdicts) is not Decision.ACCEPT
        assert any(v.decision is not Decision.ACCEPT for v in verdicts[:2])  # plan/budget critics


async def test_db_migration_loop_accepts_later_without_repeats() -> None:
    result = await dream(load(TASKS / "db-migration.json"))
    assert result.accepted is not None
    assert result.rounds in (2, 3)
    first = result.history[0]
    assert all(j.outcome is not Decision.ACCEPT for j in first.candidates)
    paths = proposed_paths(result.history)
    assert len(paths) == len(set(paths))
    assert "backup" in result.accepted.candidate.steps


DEPLOYED_RULES = RuleSet(
    harmful=("force_push", "drop_database", "rm_rf"), forbidden=("skip_tests",), max_steps=12
)


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("rules", [RULES, DEPLOYED_RULES], ids=["brief-rules", "deployed-rules"])
@pytest.mark.parametrize("name", sorted(p.name for p in TASKS.glob("*.json")))
async def test_sample_tasks_are_solved(name: str, rules: RuleSet, seed: int) -> None:
    spec_obj = load(TASKS / name)
    spec = parse_spec(spec_obj)
    result = await dream(spec_obj, OfflineReasoner(seed=seed), rules=rules)
    assert result.accepted is not None, f"{name} not accepted within 5 rounds"
    assert result.rounds <= 5
    accepted = result.accepted.candidate
    assert all(v.decision is Decision.ACCEPT for v in judge_all(accepted, spec, rules))
    assert evaluate(spec, accepted.steps).valid
    paths = proposed_paths(result.history)
    assert len(paths) == len(set(paths))


def test_sample_tasks_are_realistic() -> None:
    names = {p.name for p in TASKS.glob("*.json")}
    assert {"db-migration.json", "release-rollout.json", "dns-cutover.json"} <= names
    for name in names:
        spec = parse_spec(load(TASKS / name))
        assert 5 <= len(spec.states()) <= 10, name
        assert 8 <= len(spec.operations) <= 15, name


async def test_release_rollout_fastest_path_is_flagged() -> None:
    result = await dream(load(TASKS / "release-rollout.json"))
    first = result.history[0].candidates[0]
    assert first.outcome is Decision.FLAG
    assert "force_push_main" in first.candidate.steps
    assert result.accepted is not None and result.rounds > 1
    assert not any("force_push" in s or "rm_rf" in s for s in result.accepted.candidate.steps)


async def test_dns_cutover_solved_in_round_one() -> None:
    result = await dream(load(TASKS / "dns-cutover.json"))
    assert result.accepted is not None and result.rounds == 1


async def test_impossible_task_runs_dry() -> None:
    result = await dream(load(IMPOSSIBLE))
    assert result.accepted is None
    assert result.ran_dry and result.rounds <= 5
    assert all(j.outcome is not Decision.ACCEPT for t in result.history for j in t.candidates)
    paths = proposed_paths(result.history)
    assert len(paths) == len(set(paths))


async def test_a_path_no_critic_could_judge_is_proposed_again() -> None:
    """Rounds judged while the bus was down (no verdict came) must not spend the best paths: a
    path nobody answered for, or one that only accepting critics answered for, comes back; one a
    critic spoke against does not."""
    task = Task(id="t", kind="plan", input=EXAMPLE)
    first = await OfflineReasoner().propose(task, 1, 2, ())
    unjudged, rejected = (cand(p.steps, task) for p in first)
    accept = Verdict(candidate_id="c1", critic="rules", decision=Decision.ACCEPT)
    reject = Verdict(candidate_id="c1", critic="rules", decision=Decision.REJECT,
                     reasons=(Reason(code="unsafe", text="no"),))
    history = [RoundTrace(round=1, elapsed=0.1, candidates=(
        JudgedCandidate(candidate=unjudged, verdicts=(), outcome=Decision.REJECT, missing=("rules", "planner")),
        JudgedCandidate(candidate=rejected, verdicts=(reject,), outcome=Decision.REJECT, missing=("planner",)),
    ))]
    again = [p.steps for p in await OfflineReasoner().propose(task, 2, 2, history)]
    assert unjudged.steps in again and rejected.steps not in again
    partly = [RoundTrace(round=1, elapsed=0.1, candidates=(
        JudgedCandidate(candidate=unjudged, verdicts=(accept,), outcome=Decision.REJECT, missing=("planner",)),))]
    assert unjudged.steps in [p.steps for p in await OfflineReasoner().propose(task, 2, 2, partly)]
    judged = [RoundTrace(round=1, elapsed=0.1, candidates=(
        JudgedCandidate(candidate=unjudged, verdicts=(accept,), outcome=Decision.REJECT),))]
    assert unjudged.steps not in [p.steps for p in await OfflineReasoner().propose(task, 2, 2, judged)]
