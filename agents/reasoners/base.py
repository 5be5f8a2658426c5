"""What a dreamer asks of a reasoner: a few candidate paths per round, given what critics said.

The reasoner is the only place where the "thinking" happens (an LLM, or the offline planner);
everything it needs to improve is in `history`, so reasoners can stay stateless across tasks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import msgspec

from reverie.protocol import Artifact, Reason, RoundTrace, Task, Usage
from reverie.runtime.memory import Memory

__all__ = ["Proposal", "Proposals", "Reasoner", "RoundState"]


class Proposal(msgspec.Struct, frozen=True, kw_only=True):
    """One path a reasoner proposes; the dreamer wraps it into a `Candidate`.

    `answer` is what the task's result carries if this proposal is accepted (for plans:
    `{"steps": [...], "duration": ..., "risk": ...}`).
    """

    steps: tuple[str, ...] = ()
    text: str = ""
    """A human-readable summary, what rule critics match (a plan's path, a patch's diff)."""
    rationale: str = ""
    answer: dict[str, object] = {}
    artifact: Artifact | None = None
    """What the candidate proposes, typed (a `Patch` for code, a `Text`); None: its `steps`."""
    invalid: str = ""
    """Why this proposal is unusable (a model's answer that does not fit the candidate schema):
    the dreamer records it as a rejected candidate with this reason and asks no critic."""
    invalid_code: str = "off_schema"
    """The machine-readable code of `invalid`: `off_schema`, `truncated`, `no_call`, `refusal`."""


class Proposals(msgspec.Struct, frozen=True, kw_only=True):
    """What `propose` may return instead of a bare list: the proposals and the model usage
    that produced them (recorded per round, summed into the result)."""

    proposals: list[Proposal]
    usage: Usage | None = None
    stop: str = ""
    """Non-empty: the reasoner will not propose for this task again (a model's refusal); the
    dreamer records the round and ends the task `failed` with this reason."""


class RoundState:
    """Given to a `stateful` reasoner's `propose` as `state=`: work in flight for this
    round that must survive a restart (a Message Batch id). `pending` is what the reasoner
    saved before the dreamer last stopped (None on a fresh round); `save` commits it into the
    task's checkpoint before the reasoner waits on it, so a restarted dreamer picks it up
    instead of paying twice."""

    def __init__(self, pending: dict[str, Any] | None,
                 save: Callable[[dict[str, Any] | None], Awaitable[None]], deadline: float | None = None) -> None:
        self.pending = pending
        self._save = save
        self.deadline = deadline
        """`time.monotonic()` by which the round must be done (the task's time budget): a
        reasoner waiting out an outage gives up before it, with the API's last message."""

    async def save(self, pending: dict[str, Any] | None) -> None:
        self.pending = pending
        await self._save(pending)


class Reasoner:
    """What proposes a dreamer's candidates. Subclass it and write `propose`; the lifecycle
    hooks below default to doing nothing."""

    kinds: ClassVar[frozenset[str]] = frozenset({"plan"})
    """The task domains it can dream about (`plan`, `code`, `text`, or a config's own): a
    dreamer serves the kinds of its domains that its reasoner names here."""

    stateful: ClassVar[bool] = False
    """True: `propose` takes `state=` (a `RoundState`), for work in flight across a restart
    (a Message Batch), which the dreamer keeps in the task's checkpoint."""

    async def propose(
        self, task: Task, round: int, k: int, history: Sequence[RoundTrace],
        lessons: Sequence[Reason] = (), *, state: RoundState | None = None,
    ) -> list[Proposal] | Proposals:
        """Up to `k` new proposals for `round` (1-based); an empty list means "out of ideas".

        `history` holds every earlier round of this task, verdicts included; `lessons` are
        critics' reasons the dreamer recalled from memory of earlier, similar tasks; `state`
        is given only to a `stateful` reasoner. Raises a `ReverieError` subclass when the task
        input is unusable.
        """
        raise NotImplementedError

    def features(self, task: Task) -> frozenset[str]:
        """What makes tasks similar for recall of earlier lessons; none by default."""
        return frozenset()

    def attach_memory(self, memory: Memory) -> None:
        """The dreamer's memory, given once at start, for a reasoner that reads or writes it."""

    def attach_rules(self, rules: Sequence[str]) -> None:
        """The constitutions of the LLM critics the dreamer waits for, given once at start."""

    async def close(self) -> None:
        """Release what the reasoner holds (an HTTP client); called when the dreamer stops."""
