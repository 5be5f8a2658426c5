"""One reasoner made of several, each for its own task kinds: the offline reasoner is the
planner for `plan` and the program-repair search for `code`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from reverie.protocol import Reason, ReverieError, RoundTrace, Task
from reverie.runtime.memory import Memory

from .base import Proposal, Proposals, Reasoner, RoundState

__all__ = ["KindRouter", "NoReasonerForKind"]


class NoReasonerForKind(ReverieError):
    """A task of a kind none of the router's reasoners dreams about."""


class KindRouter(Reasoner):
    """Sends each task to the reasoner of its kind. Not `stateful`: its parts are not either."""

    kinds: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, by_kind: Mapping[str, Reasoner], *, default: str | None = None) -> None:
        self.by_kind = dict(by_kind)
        self.default = default
        """The kind whose reasoner takes tasks of other kinds (a plan dreamer moved to `task.plan-eu`)."""
        if any(r.stateful for r in self.by_kind.values()):
            raise ValueError("a KindRouter cannot route to a stateful reasoner")

    def _for(self, task: Task) -> Reasoner:
        reasoner = self.by_kind.get(task.kind) or (self.by_kind.get(self.default) if self.default else None)
        if reasoner is None:
            raise NoReasonerForKind(f"no reasoner for {task.kind!r} tasks here (kinds: {', '.join(self.by_kind)})")
        return reasoner

    async def propose(
        self, task: Task, round: int, k: int, history: Sequence[RoundTrace],
        lessons: Sequence[Reason] = (), *, state: RoundState | None = None,
    ) -> list[Proposal] | Proposals:
        return await self._for(task).propose(task, round, k, history, lessons)

    def features(self, task: Task) -> frozenset[str]:
        return self._for(task).features(task)

    def attach_memory(self, memory: Memory) -> None:
        for reasoner in self._unique():
            reasoner.attach_memory(memory)

    def attach_rules(self, rules: Sequence[str]) -> None:
        for reasoner in self._unique():
            reasoner.attach_rules(rules)

    async def close(self) -> None:
        for reasoner in self._unique():
            await reasoner.close()

    def _unique(self) -> list[Reasoner]:
        return list({id(r): r for r in self.by_kind.values()}.values())
