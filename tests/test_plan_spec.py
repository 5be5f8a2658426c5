"""Plan specs: parsing, errors that name the path, evaluating a path."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from reverie.agents.plans.spec import (
    PlanSpecError,
    evaluate,
    parse_spec,
    path_text,
)
from reverie.protocol import (
    ReverieError,
)

from .plan_helpers import (
    EXAMPLE,
    codes,
    example,
)

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
