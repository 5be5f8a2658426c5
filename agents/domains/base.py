"""What a task domain is: the kind of task a dreamer can dream about, and everything about it
that is not reasoning or judging (see README, "Task domains").

A domain names its task kind's input type (validated when a task arrives, with the JSON path of
a bad value), what a candidate carries, what makes two tasks similar for the recall of lessons,
and how an accepted candidate becomes the result's answer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from reverie.protocol import Artifact, Candidate, ReverieError, Task, artifact_of

__all__ = ["Domain", "DomainInputError"]


class DomainInputError(ReverieError):
    """A task input that its domain refuses; `path` is the JSON path of the bad value."""

    def __init__(self, kind: str, path: str, detail: str) -> None:
        super().__init__(f"invalid {kind} task input at {path}: {detail}")
        self.kind = kind
        self.path = path
        self.detail = detail


class Domain:
    """Subclass it for a new kind of task and name it in a dreamer's options
    (`domains = {"invoice" = "mypkg.domains:Invoice"}`). Every method has a working default."""

    kind: ClassVar[str] = ""
    """The task kind it serves by default (`rv.<swarm>.task.<kind>`)."""
    artifact: ClassVar[tuple[type[Artifact], ...]] = ()
    """The artifact types its candidates carry (empty: any)."""

    def parse(self, task: Task) -> Any:
        """The task's input, checked; raise `DomainInputError` naming the bad field."""
        return task.input

    def features(self, task: Task) -> frozenset[str]:
        """What makes tasks of this domain similar, for the recall of earlier lessons."""
        return frozenset()

    def answer(self, task: Task, cand: Candidate, proposed: dict[str, object]) -> object:
        """What the result of `task` carries when `cand` is accepted; `proposed` is what the
        reasoner offered as the answer (the default keeps it)."""
        return proposed

    def patience(self, task: Task, default: float) -> float:
        """How long the dreamer waits for the critics' verdicts on one of its candidates."""
        return default

    def check(self, cand: Candidate) -> str:
        """Why a candidate cannot be of this domain ("" when it can): its artifact's type."""
        art = artifact_of(cand)
        if self.artifact and not isinstance(art, self.artifact):
            want = " or ".join(t.__name__ for t in self.artifact)
            return f"a {self.kind} candidate carries a {want}, not a {type(art).__name__}"
        return ""
