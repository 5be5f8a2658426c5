"""What a dreamer asks of a reasoner: a few candidate paths per round, given what critics said.

The reasoner is the only place where the "thinking" happens (an LLM, or the offline planner);
everything it needs to improve is in `history`, so reasoners can stay stateless across tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec

from reverie.protocol import Reason, RoundTrace, Task


class Proposal(msgspec.Struct, frozen=True, kw_only=True):
    """One path a reasoner proposes; the dreamer wraps it into a `Candidate`.

    `answer` is what the task's result carries if this proposal is accepted (for plans:
    `{"steps": [...], "duration": ..., "risk": ...}`).
    """

    steps: tuple[str, ...]
    text: str
    rationale: str = ""
    answer: dict[str, object] = {}


@runtime_checkable
class Reasoner(Protocol):
    async def propose(
        self, task: Task, round: int, k: int, history: Sequence[RoundTrace],
        lessons: Sequence[Reason] = (),
    ) -> list[Proposal]:
        """Up to `k` new proposals for `round` (1-based); an empty list means "out of ideas".

        `history` holds every earlier round of this task, verdicts included; `lessons` are
        critics' reasons the dreamer recalled from memory of earlier, similar tasks. Raises a
        `ReverieError` subclass when the task input is unusable.
        """
        ...
