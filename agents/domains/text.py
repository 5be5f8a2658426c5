"""Free-form tasks answered in text: the input is the question (a string, or `{"prompt": ...}`)."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from reverie.protocol import Artifact, Candidate, Task, Text, artifact_of

from ..plans.spec import split_validation_error
from .base import Domain, DomainInputError

__all__ = ["TextDomain", "TextInput"]


class TextInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    prompt: str
    context: str = ""


class TextDomain(Domain):
    kind: ClassVar[str] = "text"
    artifact: ClassVar[tuple[type[Artifact], ...]] = (Text,)

    def parse(self, task: Task) -> TextInput:
        if isinstance(task.input, str):
            value: TextInput = TextInput(prompt=task.input)
        else:
            try:
                value = msgspec.convert(task.input, TextInput)
            except msgspec.ValidationError as exc:
                raise DomainInputError(self.kind, *split_validation_error(exc)) from None
        if not value.prompt.strip():
            raise DomainInputError(self.kind, "$.prompt", "the prompt is empty")
        return value

    def features(self, task: Task) -> frozenset[str]:
        words = {w.strip(".,;:!?\"'()").lower() for w in self.parse(task).prompt.split()}
        return frozenset(f"word:{w}" for w in words if len(w) > 3)

    def answer(self, task: Task, cand: Candidate, proposed: dict[str, object]) -> object:
        art = artifact_of(cand)
        return {"text": art.text} if isinstance(art, Text) else proposed
