"""What a dreamer's round and judging spans say (the spans themselves: `reverie.runtime.tracing`)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.trace import Span

from reverie.protocol import Decision, JudgedCandidate, Usage

__all__ = ["note_judged", "note_round"]


def note_round(s: Span, judged: Sequence[JudgedCandidate], usage: Usage | None) -> None:
    """A round's candidates and outcomes, and the model tokens its reasoning used."""
    if not s.is_recording():
        return
    s.set_attributes({"reverie.candidates": len(judged),
                      "reverie.accepted": sum(j.outcome is Decision.ACCEPT for j in judged),
                      "reverie.flagged": sum(j.outcome is Decision.FLAG for j in judged)})
    if usage is not None:
        s.set_attributes({"gen_ai.usage.input_tokens": usage.input_tokens,
                          "gen_ai.usage.output_tokens": usage.output_tokens})


def note_judged(s: Span, j: JudgedCandidate) -> None:
    """The dreamer's decision on one candidate, and which critics said nothing."""
    if s.is_recording():
        s.set_attribute("reverie.outcome", j.outcome.value)
        if j.missing:
            s.set_attribute("reverie.missing", list(j.missing))
