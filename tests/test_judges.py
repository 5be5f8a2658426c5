"""The pure judges: plan validity, budget, rules."""

from __future__ import annotations

import pytest

from reverie.agents.plans.judges import (
    RulePatternError,
    RuleSet,
    RuleSetError,
    compile_rules,
    judge_budget,
    judge_plan,
    judge_rules,
    parse_rules,
)
from reverie.agents.plans.spec import (
    parse_spec,
)
from reverie.protocol import (
    Decision,
    ReverieError,
)

from .plan_helpers import (
    EXAMPLE,
    RULES,
    cand,
    codes,
    with_constraints,
)

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
