"""Change plans: the spec a `plan` task carries, and the walk that evaluates a path through it.

A plan spec is a small state graph: operations are directed edges between states, a plan is a
sequence of operation names leading from `start` to `goal`. The constraints are what critics
enforce; the graph alone is what a naive reasoner sees. Critics and the reasoner share
`evaluate` so they can never disagree about what a path costs or where it ends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

import msgspec

from reverie.protocol import Reason, ReverieError

__all__ = [
    "Constraints",
    "Operation",
    "PlanEvaluation",
    "PlanSpec",
    "PlanSpecError",
    "evaluate",
    "parse_spec",
    "path_text",
    "spec_features",
    "split_validation_error",
]

NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Name = Annotated[str, msgspec.Meta(min_length=1)]


class PlanSpecError(ReverieError):
    """A task input that is not a usable plan spec.

    `path` is the JSON path of the offending value (`$` for the whole input), `detail` what is
    wrong with it; `str(err)` is `"<path>: <detail>"` so a user can find the spot at once.
    """

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class Operation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One directed edge `from_ -> to`; `from` on the wire, which is a keyword in Python."""

    name: Name
    from_: Name = msgspec.field(name="from")
    to: Name
    duration: NonNegative
    risk: NonNegative = 0.0
    tags: tuple[str, ...] = ()


class Constraints(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an acceptable plan must satisfy. Every field is optional; absent means unconstrained.

    `before` holds pairs `(a, b)`: `a` must come before `b`, and must be present if `b` is.
    """

    time_budget: NonNegative | None = None
    max_risk: NonNegative | None = None
    forbidden: tuple[str, ...] = ()
    forbidden_tags: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    before: tuple[tuple[str, str], ...] = ()


class PlanSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `input` of a `plan` task. Unknown fields are refused so a typo cannot drop a constraint.

    `simulate_latency` (seconds) lets a test make one task's reasoning slow on purpose.
    """

    start: Name
    goal: Name
    operations: Annotated[tuple[Operation, ...], msgspec.Meta(min_length=1)]
    title: str = ""
    description: str = ""
    constraints: Constraints = msgspec.field(default_factory=Constraints)
    seed: int = 0
    simulate_latency: NonNegative = 0.0

    def operation_map(self) -> dict[str, Operation]:
        """Operations by name (names are unique in a parsed spec)."""
        return {op.name: op for op in self.operations}

    def states(self) -> frozenset[str]:
        """Every state an operation leaves or enters; states are implied, never declared."""
        return frozenset(s for op in self.operations for s in (op.from_, op.to))


_AT_PATH = re.compile(r"^(?P<detail>.*) - at `(?P<path>\$[^`]*)`$", re.DOTALL)


def split_validation_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> tuple[str, str]:
    """Split msgspec's "detail - at `$.path`" into `(path, detail)`; `$` when it names no path."""
    match = _AT_PATH.match(str(exc))
    if match:
        return match["path"], match["detail"]
    return "$", str(exc)


def parse_spec(obj: object) -> PlanSpec:
    """Validate a task input into a `PlanSpec`, or raise `PlanSpecError` naming the bad spot.

    `obj` is normally the decoded JSON object; JSON text (str or bytes) is accepted as well so
    a spec read from a file can be passed through unparsed.
    """
    if isinstance(obj, PlanSpec):
        spec = obj
    else:
        try:
            if isinstance(obj, (str, bytes, bytearray)):
                spec = msgspec.json.decode(obj, type=PlanSpec)
            else:
                spec = msgspec.convert(obj, PlanSpec)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise PlanSpecError(*split_validation_error(exc)) from None
    _check_semantics(spec)
    return spec


def _check_semantics(spec: PlanSpec) -> None:
    """Errors a schema cannot express: duplicates, dangling names, an unusable start or goal."""
    seen: dict[str, int] = {}
    for i, op in enumerate(spec.operations):
        if op.name in seen:
            raise PlanSpecError(
                f"$.operations[{i}].name",
                f"duplicate operation name {op.name!r} (first at $.operations[{seen[op.name]}])",
            )
        seen[op.name] = i
    if spec.start == spec.goal:
        raise PlanSpecError("$.goal", f"goal {spec.goal!r} is the start state; nothing to plan")
    if not any(op.from_ == spec.start for op in spec.operations):
        raise PlanSpecError("$.start", f"no operation starts from state {spec.start!r}")
    if not any(op.to == spec.goal for op in spec.operations):
        raise PlanSpecError("$.goal", f"no operation leads to state {spec.goal!r}")
    c = spec.constraints
    for field, names in (("required", c.required), ("forbidden", c.forbidden)):
        for i, name in enumerate(names):
            if name not in seen:
                raise PlanSpecError(f"$.constraints.{field}[{i}]", f"{name!r} is not an operation")
    for i, (a, b) in enumerate(c.before):
        for j, name in enumerate((a, b)):
            if name not in seen:
                raise PlanSpecError(
                    f"$.constraints.before[{i}][{j}]", f"{name!r} is not an operation"
                )
        if a == b:
            raise PlanSpecError(f"$.constraints.before[{i}]", f"{a!r} cannot come before itself")


class PlanEvaluation(msgspec.Struct, frozen=True, kw_only=True):
    """The result of walking a path through the graph (constraints are the critics' business).

    `valid` means every step is a known operation applicable in the state the walk is in and
    the walk ends at the goal; otherwise `problems` holds `invalid_path` reasons and `end` is
    the state the walk stopped in. `duration`/`risk` sum every *known* step, valid or not, so a
    budget critic can still judge the cost of a broken path. `operations` are those known
    steps, in path order.
    """

    valid: bool
    end: str
    duration: float
    risk: float
    operations: tuple[Operation, ...]
    problems: tuple[Reason, ...] = ()


def evaluate(spec: PlanSpec, steps: Sequence[str]) -> PlanEvaluation:
    """Walk `steps` from `spec.start`, stopping at the first step that cannot be applied."""
    ops = spec.operation_map()
    state = spec.start
    stuck = False
    problems: list[Reason] = []
    known: list[Operation] = []
    for i, name in enumerate(steps):
        op = ops.get(name)
        if op is None:
            problems.append(
                Reason(
                    code="invalid_path",
                    text=f"step {i + 1} {name!r} is not an operation",
                    ops=(name,),
                )
            )
            stuck = True
            continue
        known.append(op)
        if stuck:
            continue
        if op.from_ != state:
            problems.append(
                Reason(
                    code="invalid_path",
                    text=(
                        f"step {i + 1} {name!r} applies in state {op.from_!r}, "
                        f"but the plan is in state {state!r}"
                    ),
                    ops=(name,),
                )
            )
            stuck = True
            continue
        state = op.to
    if not stuck and state != spec.goal:
        text = (
            "the plan is empty"
            if not steps
            else f"the plan ends in state {state!r}, not the goal {spec.goal!r}"
        )
        problems.append(Reason(code="invalid_path", text=text))
    return PlanEvaluation(
        valid=not problems,
        end=state,
        duration=sum(op.duration for op in known),
        risk=sum(op.risk for op in known),
        operations=tuple(known),
        problems=tuple(problems),
    )


def path_text(steps: Sequence[str]) -> str:
    """The human form of a path: `"backup -> migrate -> verify"` (empty string for no steps)."""
    return " -> ".join(steps)


def spec_features(spec: PlanSpec) -> frozenset[str]:
    """What makes plan tasks similar for recall: their operations, states and constraint kinds."""
    c = spec.constraints
    feats = {f"op:{op.name}" for op in spec.operations}
    feats |= {f"state:{s}" for s in spec.states()}
    feats |= {f"tag:{t}" for op in spec.operations for t in op.tags}
    feats |= {f"required:{r}" for r in c.required} | {f"before:{a}>{b}" for a, b in c.before}
    return frozenset(feats)
