"""The dream loop end to end: real nats-server, dreamer and three critics on the bus."""

from __future__ import annotations

import asyncio

from reverie.agents.plans.judges import RuleSet, judge_budget, judge_plan, judge_rules
from reverie.agents.plans.spec import parse_spec
from reverie.protocol import Budget, Candidate, Decision, ResultStatus, Task, encode

from .conftest import load_task

RULES = RuleSet(harmful=("force_push", "drop_database", "rm_rf"), forbidden=("skip_tests",), max_steps=12)


def assert_satisfies_everything(spec_obj: object, steps: list[str]) -> None:
    spec = parse_spec(spec_obj)
    task = Task(id="check", kind="plan", input=spec_obj)
    cand = Candidate(id="c", task=task, round=1, index=0, steps=tuple(steps), text=" -> ".join(steps))
    for judged in (judge_plan(cand, spec), judge_budget(cand, spec), judge_rules(cand, spec, RULES)):
        assert judged[0] is Decision.ACCEPT, judged


async def test_task_on_the_bus_returns_an_accepted_path_that_satisfies_every_constraint(swarm) -> None:
    spec = load_task("dns-cutover")
    result = await swarm.submit(spec, kind="plan", timeout=30)
    assert result.status is ResultStatus.ACCEPTED, result.reason
    assert result.accepted is not None
    assert list(result.accepted.candidate.steps) == result.answer["steps"]
    assert {v.critic for v in result.accepted.verdicts} == {"rules", "planner", "budget"}
    assert_satisfies_everything(spec, result.answer["steps"])
    stored = await swarm.bus.get_result(result.task_id)
    assert stored == result


async def test_rejected_first_round_is_refined_and_accepted_later(swarm) -> None:
    spec = load_task("db-migration")
    result = await swarm.submit(spec, kind="plan", timeout=30)
    assert result.status is ResultStatus.ACCEPTED, result.reason
    assert result.rounds >= 2
    first = result.trace[0]
    assert first.round == 1 and all(j.outcome is not Decision.ACCEPT for j in first.candidates)
    reasons = [r for j in first.candidates for v in j.verdicts for r in v.reasons]
    assert reasons and all(r.text for r in reasons)
    assert {v.critic for j in first.candidates for v in j.verdicts if v.decision is Decision.REJECT} >= {"planner"}
    # refinement never re-proposes a path
    paths = [j.candidate.steps for r in result.trace for j in r.candidates]
    assert len(paths) == len(set(paths))
    assert_satisfies_everything(spec, result.answer["steps"])


async def test_impossible_task_ends_exhausted_within_budget_with_reasons(swarm) -> None:
    budget = Budget(max_rounds=4, max_seconds=20, candidates_per_round=3)
    result = await swarm.submit(load_task("impossible"), kind="plan", budget=budget, timeout=30)
    assert result.status is ResultStatus.EXHAUSTED
    assert result.rounds <= 4 and result.elapsed < 20
    assert result.accepted is None and result.answer is None
    assert result.reason
    assert result.best_rejected, "an exhausted result carries the best rejected candidates"
    assert all(j.verdicts and any(v.reasons for v in j.verdicts) for j in result.best_rejected)


async def test_harmful_flagged_candidate_is_never_returned(swarm) -> None:
    spec = load_task("release-rollout")
    result = await swarm.submit(spec, kind="plan", timeout=30)
    flagged = [j for r in result.trace for j in r.candidates if j.outcome is Decision.FLAG]
    assert flagged, "the sample puts a harmful step on the fastest path"
    assert all(j.candidate.steps == () for j in flagged)
    assert result.status is ResultStatus.ACCEPTED
    assert not any("force_push" in s or "rm_rf" in s for s in result.answer["steps"])
    # nothing of a quarantined path travels in the result, not even in best_rejected
    raw = encode(result)
    for j in flagged:
        assert j.candidate.id.encode() in raw
    harmful_steps = {op for j in flagged for v in j.verdicts for r in v.reasons if r.code == "harmful" for op in r.ops}
    assert harmful_steps
    assert result.accepted is not None
    assert not harmful_steps & set(result.accepted.candidate.steps)
    assert not any(op in j.candidate.steps for r in result.trace for j in r.candidates for op in harmful_steps)


async def test_harmful_only_task_is_exhausted_without_returning_the_harmful_path(swarm) -> None:
    spec = {
        "start": "a", "goal": "b",
        "operations": [{"name": "force_push_fix", "from": "a", "to": "b", "duration": 1}],
    }
    result = await swarm.submit(spec, kind="plan", timeout=30)
    assert result.status is ResultStatus.EXHAUSTED
    assert result.best_rejected == ()  # flagged candidates are quarantined, not "best rejected"
    assert result.answer is None and result.accepted is None
    cands = [j.candidate for r in result.trace for j in r.candidates]
    assert cands and all(c.steps == () and "force_push_fix" not in c.text for c in cands)


async def test_a_slow_task_does_not_delay_a_fast_one(swarm) -> None:
    slow = dict(load_task("dns-cutover"), simulate_latency=3.0)
    fast = load_task("dns-cutover")
    slow_task = asyncio.create_task(swarm.submit(slow, kind="plan", timeout=60))
    await asyncio.sleep(0)  # let the slow task be published first
    fast_result = await swarm.submit(fast, kind="plan", timeout=60)
    assert fast_result.status is ResultStatus.ACCEPTED
    assert not slow_task.done(), "the fast task finished while the slow one was still dreaming"
    slow_result = await slow_task
    assert slow_result.status is ResultStatus.ACCEPTED
    assert fast_result.elapsed < 3.0 < slow_result.elapsed


async def test_many_tasks_dream_at_once(swarm) -> None:
    spec = dict(load_task("dns-cutover"), simulate_latency=0.5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    results = await asyncio.gather(*(swarm.submit(spec, kind="plan", timeout=60) for _ in range(20)))
    assert all(r.status is ResultStatus.ACCEPTED for r in results)
    # 20 tasks x 2+ rounds x 0.5 s of "thinking" would take 20 s one at a time
    assert loop.time() - began < 10


async def test_an_exhausted_task_records_each_round_once(swarm) -> None:
    budget = Budget(max_rounds=4, max_seconds=20, candidates_per_round=3)
    result = await swarm.submit(load_task("impossible"), kind="plan", budget=budget, timeout=30)
    assert result.status is ResultStatus.EXHAUSTED
    memory = swarm.hosts["dreamer"].agent.memory
    for rnd in result.trace:
        path = f"/tasks/{result.task_id}/rounds/{rnd.round}"
        assert [h.version for h in await memory.history(path)] == [1]
        for j in rnd.candidates:  # put, then invalidated: two versions, not four
            assert len(await memory.history(f"{path}/cand/{j.candidate.index}")) == 2
    stored = await memory.get(f"/tasks/{result.task_id}/result")
    assert stored is not None and await memory.checkpoint(result.task_id) is None
