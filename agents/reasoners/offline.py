"""A reasoner that needs no model: graph search over the plan spec, steered by critics' reasons.

It is deliberately naive at first: round 1 sees the graph but not the constraints and simply
proposes the fastest paths, so critics have something real to reject. Every later round turns
each `Reason` of earlier verdicts into a learned constraint and proposes the fastest paths that
satisfy all of them and were never proposed before. When nothing is left it returns `[]` and
the dreamer ends the task `exhausted`. Deterministic for the same (task, history, seed).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from reverie.protocol import Decision, JudgedCandidate, Reason, RoundTrace, Task

from ..plans.spec import Operation, PlanSpec, parse_spec, path_text, spec_features
from .base import Proposal, Reasoner, RoundState

__all__ = ["MAX_EXPANSIONS", "MAX_PATHS", "LearnedConstraints", "OfflineReasoner", "PlanPath", "enumerate_paths",
           "lessons_used", "plan_features"]

MAX_PATHS = 5_000
"""Enumeration stops after this many paths, so a pathological graph cannot hang a round."""

MAX_EXPANSIONS = 200_000
"""Bound on DFS edge expansions, for graphs with many dead ends but few complete paths."""

_EPS = 1e-9
_N = TypeVar("_N", int, float)


@dataclass(frozen=True, slots=True)
class PlanPath:
    """A simple path from start to goal, with its cost precomputed."""

    steps: tuple[str, ...]
    duration: float
    risk: float


def plan_features(task: Task) -> frozenset[str]:
    """What makes plan tasks similar for recall: their operations, states and constraint kinds."""
    return spec_features(parse_spec(task.input))


@functools.lru_cache(maxsize=32)
def enumerate_paths(
    spec: PlanSpec, max_len: int, max_paths: int = MAX_PATHS
) -> tuple[PlanPath, ...]:
    """Every simple path (no state visited twice) from start to goal of at most `max_len` ops.

    Depth-first in operation-name order, pruned by the distance to the goal; cached per spec
    because a dreamer asks about the same task once per round.
    """
    out_edges: dict[str, list[Operation]] = {}
    for op in sorted(spec.operations, key=lambda o: o.name):
        out_edges.setdefault(op.from_, []).append(op)
    dist = _distance_to(spec.goal, spec.operations)
    paths: list[PlanPath] = []
    if spec.start not in dist or dist[spec.start] > max_len:
        return ()
    visited = {spec.start}
    trail: list[Operation] = []
    budget = [MAX_EXPANSIONS]

    def dfs(state: str) -> bool:
        for op in out_edges.get(state, ()):
            budget[0] -= 1
            if budget[0] < 0 or len(paths) >= max_paths:
                return False
            nxt = op.to
            if nxt in visited or nxt not in dist or len(trail) + 1 + dist[nxt] > max_len:
                continue
            trail.append(op)
            if nxt == spec.goal:
                paths.append(
                    PlanPath(
                        steps=tuple(o.name for o in trail),
                        duration=sum(o.duration for o in trail),
                        risk=sum(o.risk for o in trail),
                    )
                )
            else:
                visited.add(nxt)
                going = dfs(nxt)
                visited.discard(nxt)
                if not going:
                    trail.pop()
                    return False
            trail.pop()
        return True

    dfs(spec.start)
    return tuple(paths)


def _distance_to(goal: str, operations: Sequence[Operation]) -> dict[str, int]:
    """Fewest operations from each state to `goal` (states that cannot reach it are absent)."""
    incoming: dict[str, list[str]] = {}
    for op in operations:
        incoming.setdefault(op.to, []).append(op.from_)
    dist = {goal: 0}
    queue = deque([goal])
    while queue:
        state = queue.popleft()
        for prev in incoming.get(state, ()):
            if prev not in dist:
                dist[prev] = dist[state] + 1
                queue.append(prev)
    return dist


@dataclass
class LearnedConstraints:
    """What critics have taught about a task so far; each entry remembers the round it came from.

    `require_any` holds option sets: at least one op of each set must be in the path (a
    `missing_required` from the plan critic names one op, from a rule pattern possibly several).
    """

    banned: dict[str, int] = field(default_factory=dict)
    require_any: dict[tuple[str, ...], int] = field(default_factory=dict)
    order: dict[tuple[str, str], int] = field(default_factory=dict)
    max_duration: tuple[float, int] | None = None
    max_risk: tuple[float, int] | None = None
    max_steps: tuple[int, int] | None = None
    max_chars: tuple[int, int] | None = None
    proposed: set[tuple[str, ...]] = field(default_factory=set)

    @classmethod
    def from_history(cls, history: Sequence[RoundTrace]) -> LearnedConstraints:
        learned = cls()
        for trace in history:
            for judged in trace.candidates:
                if _judged_against(judged):
                    learned.proposed.add(tuple(judged.candidate.steps))
                for verdict in judged.verdicts:
                    for reason in verdict.reasons:
                        learned.learn(reason, judged.candidate.steps, trace.round)
        return learned

    def learn(self, reason: Reason, steps: Sequence[str], round: int) -> None:
        """Fold one critic finding about the path `steps` into the constraints."""
        code = reason.code
        if code in ("forbidden_op", "harmful") or (code == "risk" and reason.limit is None):
            # A risk reason without a limit names ops carrying a forbidden tag: never use them.
            for op in reason.ops:
                self.banned.setdefault(op, round)
        elif code == "risk":
            # Over the risk ceiling: cap total risk rather than ban every risky op on the path.
            self.max_risk = _tighter(self.max_risk, float(reason.limit or 0.0), round)
        elif code == "over_budget" and reason.limit is not None:
            self.max_duration = _tighter(self.max_duration, reason.limit, round)
        elif code == "missing_required" and reason.ops:
            self.require_any.setdefault(tuple(sorted(set(reason.ops))), round)
        elif code == "order" and len(reason.ops) == 2:
            self.order.setdefault((reason.ops[0], reason.ops[1]), round)
        elif code == "too_long":
            limit = int(reason.limit) if reason.limit is not None else None
            if limit is not None and reason.value is not None and reason.value != len(steps):
                self.max_chars = _tighter(self.max_chars, limit, round)
            else:
                cap = limit if limit is not None else max(len(steps) - 1, 0)
                self.max_steps = _tighter(self.max_steps, cap, round)

    def admits(self, path: PlanPath) -> bool:
        steps = path.steps
        if steps in self.proposed:
            return False
        if any(s in self.banned for s in steps):
            return False
        if any(not any(o in steps for o in options) for options in self.require_any):
            return False
        for a, b in self.order:
            if b in steps and (a not in steps or steps.index(a) > steps.index(b)):
                return False
        if self.max_duration and path.duration > self.max_duration[0] + _EPS:
            return False
        if self.max_risk and path.risk > self.max_risk[0] + _EPS:
            return False
        if self.max_steps and len(steps) > self.max_steps[0]:
            return False
        if self.max_chars and len(path_text(steps)) > self.max_chars[0]:
            return False
        return True

    def describe(self) -> str:
        """The lessons as one line for a rationale, grouped by the round that taught them:
        `round 1: avoid a, b; include c; c before d; risk <= 4`."""
        by_round: dict[int, dict[str, list[str]]] = {}

        def note(round: int, group: str, text: str) -> None:
            by_round.setdefault(round, {}).setdefault(group, []).append(text)

        for op, r in self.banned.items():
            note(r, "avoid", op)
        for opts, r in self.require_any.items():
            note(r, "include", " or ".join(opts))
        for (a, b), r in self.order.items():
            note(r, "", f"{a} before {b}")
        limits = (
            (self.max_duration, "duration <= {:g}"),
            (self.max_risk, "risk <= {:g}"),
            (self.max_steps, "at most {} steps"),
            (self.max_chars, "at most {} characters"),
        )
        for learned, fmt in limits:
            if learned:
                note(learned[1], "", fmt.format(learned[0]))
        parts = []
        for r in sorted(by_round):
            groups = by_round[r]
            phrases = [
                f"{g} {', '.join(items)}" if g else "; ".join(items) for g, items in groups.items()
            ]
            parts.append(f"round {r}: {'; '.join(phrases)}")
        return " | ".join(parts)


def _tighter(current: tuple[_N, int] | None, limit: _N, round: int) -> tuple[_N, int]:
    if current is None or limit < current[0]:
        return (limit, round)
    return current


class OfflineReasoner(Reasoner):
    """Graph-search reasoner for `plan` tasks; see the module docstring for its behaviour.

    `latency` seconds are slept per `propose` call to stand in for a slow model, plus the
    spec's own `simulate_latency`.
    """

    def __init__(self, seed: int = 0, max_path_len: int = 12, latency: float = 0.0) -> None:
        if max_path_len < 1:
            raise ValueError("max_path_len must be at least 1")
        if latency < 0:
            raise ValueError("latency cannot be negative")
        self.seed = seed
        self.max_path_len = max_path_len
        self.latency = latency

    def features(self, task: Task) -> frozenset[str]:
        return plan_features(task)

    async def propose(
        self, task: Task, round: int, k: int, history: Sequence[RoundTrace],
        lessons: Sequence[Reason] = (), *, state: RoundState | None = None,
    ) -> list[Proposal]:
        spec = parse_spec(task.input)
        delay = self.latency + spec.simulate_latency
        if delay > 0:
            await asyncio.sleep(delay)
        return self.propose_sync(spec, round, k, history, lessons)

    def propose_sync(
        self, spec: PlanSpec, round: int, k: int, history: Sequence[RoundTrace],
        lessons: Sequence[Reason] = (),
    ) -> list[Proposal]:
        """The actual (tiny, CPU-only) work of `propose`, without the simulated latency.

        `lessons` are critics' reasons recalled from earlier, similar tasks. They steer from
        round 1 on, but softly: only those about operations this spec has, never limits that
        belong to another task's budget, and if they leave no path they are ignored.
        """
        if k <= 0:
            return []
        learned = LearnedConstraints.from_history(history)
        paths = enumerate_paths(spec, self.max_path_len)
        candidates = [p for p in paths if learned.admits(p)]
        recalled = _applicable(lessons, spec)
        if recalled:
            informed = LearnedConstraints.from_history(history)
            for reason in recalled:
                informed.learn(reason, (), 0)
            better = [p for p in candidates if informed.admits(p)]
            if better:
                candidates, learned = better, informed
        candidates.sort(key=lambda p: (_cost_key(p.duration), self._tiebreak(spec, p), p.steps))
        chosen = candidates[:k]
        taught = learned.describe()
        proposals = []
        for rank, path in enumerate(chosen, start=1):
            what = "fastest" if rank == 1 else f"#{rank} fastest"
            cost = f"duration {path.duration:g}, risk {path.risk:g}"
            if recalled and lessons_used(learned):
                why = f"{what} path ({cost}) honouring {len(recalled)} lesson(s) recalled from earlier tasks"
                if history:
                    why += f" and {taught}"
            elif not history:
                why = f"{what} path ({cost}); no constraints known yet"
            elif taught:
                why = f"{what} untried path ({cost}) honouring what critics taught in {taught}"
            else:
                why = f"{what} untried path ({cost}); critics gave nothing to steer by"
            proposals.append(
                Proposal(
                    steps=path.steps,
                    text=path_text(path.steps),
                    rationale=why,
                    answer={
                        "steps": list(path.steps),
                        "duration": path.duration,
                        "risk": path.risk,
                    },
                )
            )
        return proposals

    def _tiebreak(self, spec: PlanSpec, path: PlanPath) -> bytes:
        """A seeded hash of the path: equal-duration paths are ordered differently per seed."""
        key = f"{self.seed}|{spec.seed}|{path_text(path.steps)}".encode()
        return hashlib.blake2b(key, digest_size=8).digest()


_TRANSFERABLE = {"forbidden_op", "harmful", "missing_required", "order"}


def _applicable(lessons: Sequence[Reason], spec: PlanSpec) -> list[Reason]:
    """Recalled reasons that can steer this spec: about its own operations, and of a kind that
    carries over between tasks (bans, required steps, orderings, forbidden tags; not budgets)."""
    names = {op.name for op in spec.operations}
    out = []
    for r in lessons:
        transferable = r.code in _TRANSFERABLE or (r.code == "risk" and r.limit is None)
        if transferable and r.ops and all(op in names for op in r.ops):
            out.append(r)
    return out


def lessons_used(learned: LearnedConstraints) -> bool:
    return any(r == 0 for r in learned.banned.values()) or any(
        r == 0 for r in learned.require_any.values()) or any(r == 0 for r in learned.order.values())


def _cost_key(x: float) -> float:
    """Durations compared at microsecond precision, so float sums like 0.1+0.2 still tie."""
    return round(x, 6)


def _judged_against(judged: JudgedCandidate) -> bool:
    """Whether a path is spent: a critic spoke against it, or every critic judged it. One that
    critics could not judge (no verdict came: the bus was down, a critic was restarting) is
    proposed again, or an outage would cost the task its best paths for good."""
    return not judged.missing or any(v.decision is not Decision.ACCEPT for v in judged.verdicts)
