"""Plan specs, the pure judges and the offline reasoner, including a simulated dream loop."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from reverie.agents.plans.judges import (
    RulePatternError,
    Rules,
    RuleSet,
    RuleSetError,
    compile_rules,
    judge_budget,
    judge_plan,
    judge_rules,
    parse_rules,
)
from reverie.agents.plans.spec import (
    PlanSpec,
    PlanSpecError,
    evaluate,
    parse_spec,
    path_text,
)
from reverie.agents.reasoners.base import Proposal, Reasoner
from reverie.agents.reasoners.offline import (
    LearnedConstraints,
    OfflineReasoner,
    PlanPath,
    enumerate_paths,
)
from reverie.protocol import (
    Candidate,
    Decision,
    JudgedCandidate,
    Reason,
    ReverieError,
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


# --------------------------------------------------------------------------- spec parsing


def test_parse_example_spec() -> None:
    spec = parse_spec(EXAMPLE)
    assert spec.start == "live" and spec.goal == "done"
    assert spec.operations[1].from_ == "live"
    assert spec.operations[1].tags == ("dangerous",)
    assert spec.constraints.before == (("backup", "migrate"),)
    assert spec.seed == 7 and spec.simulate_latency == 0
    assert "from" in msgspec.json.encode(spec.operations[0]).decode()
    assert parse_spec(json.dumps(EXAMPLE)) == spec  # JSON text is accepted too


def test_minimal_spec_defaults() -> None:
    spec = parse_spec(
        {
            "start": "a",
            "goal": "b",
            "operations": [{"name": "go", "from": "a", "to": "b", "duration": 1}],
        }
    )
    assert spec.constraints.time_budget is None and spec.constraints.required == ()
    assert spec.seed == 0


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (
            lambda s: s["operations"][1].update(duration="slow"),
            "$.operations[1].duration",
            "Expected `float`, got `str`",
        ),
        (lambda s: s["operations"][0].update(risk=-1), "$.operations[0].risk", ">= 0"),
        (
            lambda s: s["operations"][2].pop("from"),
            "$.operations[2]",
            "missing required field `from`",
        ),
        (
            lambda s: s["constraints"].update(time_budjet=5),
            "$.constraints",
            "unknown field `time_budjet`",
        ),
        (
            lambda s: s["constraints"].update(before=[["backup"]]),
            "$.constraints.before[0]",
            "Expected `array` of length 2",
        ),
        (lambda s: s.update(operations=[]), "$.operations", "length >= 1"),
        (
            lambda s: s["operations"][3].update(name="backup"),
            "$.operations[3].name",
            "duplicate operation name 'backup'",
        ),
        (
            lambda s: s.update(start="nowhere"),
            "$.start",
            "no operation starts from state 'nowhere'",
        ),
        (lambda s: s.update(goal="moon"), "$.goal", "no operation leads to state 'moon'"),
        (
            lambda s: s["constraints"].update(required=["backup", "pray"]),
            "$.constraints.required[1]",
            "'pray' is not an operation",
        ),
        (
            lambda s: s["constraints"].update(forbidden=["rm"]),
            "$.constraints.forbidden[0]",
            "'rm' is not an operation",
        ),
        (
            lambda s: s["constraints"].update(before=[["backup", "nap"]]),
            "$.constraints.before[0][1]",
            "'nap' is not an operation",
        ),
    ],
)
def test_spec_errors_name_the_path(mutate: Any, path: str, fragment: str) -> None:
    spec = example()
    mutate(spec)
    with pytest.raises(PlanSpecError) as info:
        parse_spec(spec)
    assert info.value.path == path
    assert fragment in info.value.detail
    assert str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value, ReverieError)


def test_spec_error_message_format() -> None:
    spec = example()
    spec["operations"][1]["duration"] = "5"
    with pytest.raises(
        PlanSpecError, match=r"^\$\.operations\[1\]\.duration: Expected `float`, got `str`$"
    ):
        parse_spec(spec)


@pytest.mark.parametrize("bad", ["not json", 42, None, ["a"], b"{"])
def test_non_object_input_is_a_spec_error(bad: object) -> None:
    with pytest.raises(PlanSpecError) as info:
        parse_spec(bad)
    assert info.value.path.startswith("$")


# --------------------------------------------------------------------------- evaluate


def test_evaluate_valid_path() -> None:
    ev = evaluate(parse_spec(EXAMPLE), ["backup", "migrate", "verify"])
    assert ev.valid and ev.end == "done" and ev.problems == ()
    assert ev.duration == 29 and ev.risk == 1
    assert [op.name for op in ev.operations] == ["backup", "migrate", "verify"]


@pytest.mark.parametrize(
    ("steps", "end", "fragment"),
    [
        (["backup", "teleport", "verify"], "backed_up", "'teleport' is not an operation"),
        (["backup", "verify"], "backed_up", "applies in state 'migrated'"),
        (["backup", "migrate"], "migrated", "ends in state 'migrated'"),
        ([], "live", "empty"),
    ],
)
def test_evaluate_invalid_paths(steps: list[str], end: str, fragment: str) -> None:
    ev = evaluate(parse_spec(EXAMPLE), steps)
    assert not ev.valid
    assert ev.end == end
    assert codes(ev.problems) == ["invalid_path"]
    assert fragment in ev.problems[0].text


def test_evaluate_sums_known_steps_of_broken_paths() -> None:
    ev = evaluate(parse_spec(EXAMPLE), ["migrate_in_place", "migrate", "verify"])
    assert not ev.valid and ev.duration == 24 and ev.risk == 4


def test_path_text() -> None:
    assert path_text(["backup", "migrate", "verify"]) == "backup -> migrate -> verify"
    assert path_text([]) == ""


# --------------------------------------------------------------------------- judge_plan


def test_judge_plan_accepts_good_path() -> None:
    assert judge_plan(cand(["backup", "migrate", "verify"]), parse_spec(EXAMPLE)) == (
        Decision.ACCEPT,
        1.0,
        (),
    )


def test_judge_plan_invalid_path() -> None:
    decision, score, reasons = judge_plan(cand(["backup", "verify"]), parse_spec(EXAMPLE))
    assert decision is Decision.REJECT and 0 <= score < 1
    assert codes(reasons) == ["invalid_path"]
    assert reasons[0].ops == ("verify",)


def test_judge_plan_missing_required() -> None:
    decision, _, reasons = judge_plan(cand(["migrate_in_place", "verify"]), parse_spec(EXAMPLE))
    assert decision is Decision.REJECT
    assert codes(reasons) == ["missing_required"]
    assert reasons[0].ops == ("backup",)


def test_judge_plan_order() -> None:
    spec = with_constraints(before=[["verify", "drop_table"]])
    # second present without the first
    _, _, reasons = judge_plan(cand(["migrate_in_place", "drop_table"]), spec)
    assert codes(reasons) == ["order"] and reasons[0].ops == ("verify", "drop_table")
    # both present, wrong order (the walk is invalid too, but the order is still reported)
    _, _, reasons = judge_plan(cand(["migrate_in_place", "drop_table", "verify"]), spec)
    assert "order" in codes(reasons)
    # right order, or the second absent: fine
    spec = with_constraints(before=[["backup", "migrate"]])
    assert judge_plan(cand(["backup", "migrate", "verify"]), spec)[0] is Decision.ACCEPT
    assert judge_plan(cand(["migrate_in_place", "verify"]), spec)[0] is Decision.ACCEPT


# --------------------------------------------------------------------------- judge_budget


def test_judge_budget_accepts_within_limits() -> None:
    assert (
        judge_budget(cand(["backup", "migrate", "verify"]), parse_spec(EXAMPLE))[0]
        is Decision.ACCEPT
    )


def test_judge_budget_over_budget() -> None:
    spec = with_constraints(time_budget=20)
    decision, score, reasons = judge_budget(cand(["backup", "migrate", "verify"]), spec)
    assert decision is Decision.REJECT and 0 <= score < 1
    assert codes(reasons) == ["over_budget"]
    assert (reasons[0].limit, reasons[0].value) == (20, 29)


def test_judge_budget_max_risk_names_risky_ops() -> None:
    spec = with_constraints(max_risk=4)
    decision, _, reasons = judge_budget(cand(["migrate_in_place", "drop_table"]), spec)
    assert decision is Decision.REJECT
    assert codes(reasons) == ["risk"]
    assert reasons[0].ops == ("migrate_in_place", "drop_table")
    assert (reasons[0].limit, reasons[0].value) == (4, 5)


def test_judge_budget_forbidden_tag() -> None:
    spec = with_constraints(forbidden_tags=["dangerous"])
    decision, _, reasons = judge_budget(cand(["migrate_in_place", "verify"]), spec)
    assert decision is Decision.REJECT
    assert codes(reasons) == ["risk"]
    assert reasons[0].ops == ("migrate_in_place",) and reasons[0].limit is None


# --------------------------------------------------------------------------- judge_rules


def test_judge_rules_spec_forbidden_op() -> None:
    decision, _, reasons = judge_rules(
        cand(["migrate_in_place", "drop_table"]), parse_spec(EXAMPLE), RuleSet()
    )
    assert decision is Decision.REJECT
    assert codes(reasons) == ["forbidden_op"] and reasons[0].ops == ("drop_table",)


def test_judge_rules_forbidden_pattern() -> None:
    rules = RuleSet(forbidden=(r"in_place$",))
    _, _, reasons = judge_rules(cand(["migrate_in_place", "verify"]), None, rules)
    assert codes(reasons) == ["forbidden_op"] and reasons[0].ops == ("migrate_in_place",)
    # text-only match (a non-plan candidate has no steps)
    decision, _, reasons = judge_rules(
        cand([], text="we migrate in place"), None, RuleSet(forbidden=("in place",))
    )
    assert decision is Decision.REJECT and codes(reasons) == ["pattern"]


def test_judge_rules_harmful_flags_and_wins_over_reject() -> None:
    steps = ["force_push_main", "drop_table", "a", "b", "c"]
    rules = RuleSet(harmful=("force_push",), forbidden=("drop",), required=("backup",), max_steps=3)
    decision, score, reasons = judge_rules(cand(steps), parse_spec(EXAMPLE), rules)
    assert decision is Decision.FLAG and score == 0.0
    assert codes(reasons)[0] == "harmful" and reasons[0].ops == ("force_push_main",)
    assert {"forbidden_op", "missing_required", "too_long"} <= set(codes(reasons))


def test_judge_rules_harmful_in_text_only() -> None:
    decision, _, reasons = judge_rules(cand([], text="just RM_RF the cache"), None, RULES)
    assert decision is Decision.FLAG and reasons[0].ops == ()


def test_judge_rules_required_and_limits() -> None:
    rules = RuleSet(required=(r"^back",), max_steps=1, max_chars=10)
    decision, _, reasons = judge_rules(
        cand(["migrate_in_place", "verify"]), parse_spec(EXAMPLE), rules
    )
    assert decision is Decision.REJECT
    assert codes(reasons) == ["missing_required", "too_long", "too_long"]
    assert reasons[0].ops == ("backup",)  # the spec's ops that would satisfy the pattern
    assert (reasons[1].limit, reasons[1].value) == (1, 2)
    assert reasons[2].limit == 10 and reasons[2].value == len("migrate_in_place -> verify")


def test_judge_rules_non_plan_candidate() -> None:
    rules = RuleSet(required=("because",), max_chars=40)
    assert judge_rules(cand([], text="yes, because it is"), None, rules)[0] is Decision.ACCEPT
    decision, _, reasons = judge_rules(cand([], text="no"), None, rules)
    assert (
        decision is Decision.REJECT
        and codes(reasons) == ["missing_required"]
        and reasons[0].ops == ()
    )


def test_judge_rules_accepts_with_compiled_rules() -> None:
    compiled = compile_rules(RULES)
    assert compile_rules(RULES) is compiled  # cached
    assert judge_rules(cand(["backup", "migrate", "verify"]), parse_spec(EXAMPLE), compiled) == (
        Decision.ACCEPT,
        1.0,
        (),
    )


def test_invalid_regex_is_a_typed_error() -> None:
    with pytest.raises(RulePatternError) as info:
        compile_rules(RuleSet(harmful=("ok", "(unclosed")))
    assert info.value.pattern == "(unclosed"
    assert info.value.path == "$.harmful[1]"
    assert isinstance(info.value, ReverieError)


def test_parse_rules_from_toml_and_mapping() -> None:
    toml = 'harmful = ["force_push", "drop_database", "rm_rf"]\nmax_steps = 12\n'
    assert parse_rules(toml) == RULES
    assert (
        parse_rules({"harmful": ["force_push", "drop_database", "rm_rf"], "max_steps": 12}) == RULES
    )
    with pytest.raises(RuleSetError, match=r"^\$\.max_steps: Expected `int \| null`, got `str`"):
        parse_rules({"max_steps": "many"})
    with pytest.raises(RulePatternError):
        parse_rules({"forbidden": ["[z-a]"]})


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
