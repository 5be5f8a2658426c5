"""A `module:Class` reasoner written before `Reasoner` was a base class: any class with
`propose` (and, optionally, `features`, `attach_memory`, `attach_rules`, `close`, a `state`
keyword) keeps working, seen through `Reasoner`'s interface."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from reverie.protocol import Reason, RoundTrace, Task
from reverie.runtime.memory import Memory

from .base import Proposal, Proposals, Reasoner, RoundState

__all__ = ["adapt"]


def adapt(reasoner: object) -> Reasoner:
    """`reasoner` itself if it is a `Reasoner`, else it behind the base class's interface."""
    if isinstance(reasoner, Reasoner):
        return reasoner
    propose = getattr(reasoner, "propose", None)
    stateful = propose is not None and "state" in inspect.signature(propose).parameters
    return _StatefulAdapted(reasoner) if stateful else _Adapted(reasoner)


class _Adapted(Reasoner):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def propose(
        self, task: Task, round: int, k: int, history: Sequence[RoundTrace],
        lessons: Sequence[Reason] = (), *, state: RoundState | None = None,
    ) -> list[Proposal] | Proposals:
        extra = {"state": state} if self.stateful else {}
        out: list[Proposal] | Proposals = await self.inner.propose(task, round, k, history, lessons, **extra)
        return out

    def features(self, task: Task) -> frozenset[str]:
        features = getattr(self.inner, "features", None)
        return frozenset(features(task)) if features is not None else frozenset()

    def attach_memory(self, memory: Memory) -> None:
        hook = getattr(self.inner, "attach_memory", None)
        if hook is not None:
            hook(memory)

    def attach_rules(self, rules: Sequence[str]) -> None:
        hook = getattr(self.inner, "attach_rules", None)
        if hook is not None:
            hook(list(rules))

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()


class _StatefulAdapted(_Adapted):
    stateful = True
