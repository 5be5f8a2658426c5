"""The span of one handler call: `invoke_agent <agent>`, a child of the span that sent the message.

Every task gets a span (a root one when its submitter traced nothing), so each task's dream is a
trace; a core message (a candidate to judge) gets one only when its sender's trace came with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from reverie.protocol import Candidate, Result, Task, Verdict

from ..agent import BoundHandler
from ..tracing.spans import SpanKind, context_of, span

__all__ = ["handler_span", "note_reply"]


def _about(message: Any) -> dict[str, AttributeValue]:
    match message:
        case Task():
            return {"reverie.task.id": message.id, "reverie.task.kind": message.kind}
        case Candidate():
            return {"reverie.task.id": message.task.id, "reverie.candidate.id": message.id}
    return {}


def handler_span(agent: str, replica: int, h: BoundHandler, headers: Mapping[str, str] | None,
                 message: Any) -> AbstractContextManager[Span | None]:
    parent = context_of(headers)
    if parent is None and not h.durable:
        return nullcontext()
    # few attributes: each costs a span a few microseconds, and a round makes a dozen spans
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, **_about(message)}
    if h.durable:
        attributes["gen_ai.agent.id"] = f"{agent}.{replica}"
    return span(f"invoke_agent {agent}", kind=SpanKind.CONSUMER, parent=parent, attributes=attributes)


def note_reply(s: Span | None, reply: Any) -> None:
    """What the handler answered, on its span: a verdict's decision, a result's status."""
    if s is None or not s.is_recording():
        return
    match reply:
        case Verdict():
            s.set_attribute("reverie.verdict.decision", reply.decision.value)  # the reasons are in the result
        case Result():
            s.set_attributes({"reverie.result.status": reply.status.value, "reverie.rounds": reply.rounds})
