"""Claude as the engine of consolidation dreams: given an agent's lessons and the dream's
instructions (up to 4,096 characters, as the Dreams API allows), it decides which lessons are
duplicates and writes one summary per topic, through a tool so the plan is structured.

`runtime.consolidation.dream` calls `plan` on the memory's worker thread, synchronously, so
this uses the SDK's synchronous client (same options, same failure policy as `Claude`).
A plan that does not fit the schema, or names lessons that do not exist, fails the dream
(recorded as failed, memory unchanged) rather than merging the wrong things.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any

import anthropic
import msgspec

from reverie.runtime.memory import Lesson
from reverie.runtime.memory.dreams import DreamUsage, Plan

from .client import (
    ClaudeFatal,
    ClaudeOptions,
    ClaudeUnavailable,
    client_kwargs,
    fatal_error,
    price_of,
    usage_of,
)
from .models import rules_for
from .stops import unusable_stop

__all__ = [
    "PLAN_TOOL",
    "SYSTEM_PROMPT",
    "TOOL_NAME",
    "ClaudeConsolidator",
]

TOOL_NAME = "consolidation_plan"

PLAN_TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "The consolidation plan: groups of duplicate lessons to merge, and one summary per topic.",
    "input_schema": {
        "type": "object",
        "properties": {
            "merges": {"type": "array", "items": {
                "type": "object",
                "properties": {"lessons": {"type": "array", "minItems": 2, "items": {"type": "string"},
                                           "description": "Ids of lessons that say the same thing."},
                               "text": {"type": "string", "description": "The merged lesson's wording."}},
                "required": ["lessons", "text"], "additionalProperties": False}},
            "summaries": {"type": "object", "additionalProperties": {"type": "string"},
                          "description": "topic -> what the agent has learned about it, most important first."},
        },
        "required": ["merges", "summaries"],
        "additionalProperties": False,
    },
}

SYSTEM_PROMPT = """You consolidate the memory of an agent in a reverie swarm while it sleeps. \
You get its lessons (findings critics taught it, each with an id, a topic, a code, the \
operations concerned and a weight = how often it was learned). Merge lessons that say the \
same thing about the same topic into one, and write a short summary per topic. Never merge \
lessons that differ in substance. Answer with one call of the `consolidation_plan` tool."""


class _Merge(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lessons: Annotated[list[str], msgspec.Meta(min_length=2)]
    text: str


class _PlanInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    merges: list[_Merge]
    summaries: dict[str, str]


def _render_lessons(lessons: Sequence[Lesson]) -> str:
    return "\n".join(f"{x.id} | topic {x.topic} | [{x.reason.code}] {x.reason.text} | ops {','.join(x.reason.ops)}"
                     f" | weight {x.weight:g}" for x in lessons) or "(no lessons)"


class ClaudeConsolidator:
    """`consolidator` for `runtime.consolidation.dream`, backed by Claude."""

    name = "claude"

    def __init__(self, options: ClaudeOptions, *, api_key: str | None = None) -> None:
        self.options = options
        self.rules = rules_for(options.model)
        self.price = price_of(options)
        self.client = anthropic.Anthropic(**client_kwargs(options, api_key=api_key, sync=True))

    def request(self, lessons: Sequence[Lesson], instructions: str) -> dict[str, Any]:
        """Forced onto the plan tool where the model allows it; else asked in words (`auto`)."""
        system = SYSTEM_PROMPT + (f"\n\nInstructions for this dream:\n{instructions}" if instructions else "")
        params: dict[str, Any] = {
            "model": self.options.model, "max_tokens": self.options.max_tokens,
            "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            "tools": [PLAN_TOOL], "messages": [{"role": "user", "content": _render_lessons(lessons)}]}
        if self.rules.off is not None:  # planning wants no long deliberation: thinking off where it can be
            params["thinking"] = {"type": self.rules.off}
            if self.rules.forced_tool_choice:
                params["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        if "tool_choice" not in params:
            params["messages"][0]["content"] += f"\n\nAnswer with one call of the {TOOL_NAME} tool and nothing else."
        return params

    def plan(self, lessons: Sequence[Lesson], instructions: str, usage: DreamUsage) -> Plan:
        try:
            message = self.client.messages.create(**self.request(lessons, instructions))
        except anthropic.APIStatusError as exc:
            raise fatal_error(exc, self.options) or ClaudeUnavailable(f"consolidation: {exc}") from exc
        except anthropic.APIConnectionError as exc:
            raise ClaudeUnavailable(f"consolidation: {exc}") from exc
        u = message.usage
        usage.input_tokens += ((u.input_tokens or 0) + (u.cache_creation_input_tokens or 0)
                               + (u.cache_read_input_tokens or 0))
        usage.output_tokens += u.output_tokens or 0
        cost = usage_of(u, self.price, self.options.model, batched=False)
        usage.cost_usd = None if self.price is None else (usage.cost_usd or 0.0) + (cost.cost_usd or 0.0)
        stop = unusable_stop(message)
        if stop is not None:
            raise ClaudeFatal(f"consolidation: {stop[1]}")
        calls = [b for b in message.content if b.type == "tool_use" and b.name == TOOL_NAME]
        if not calls:
            raise ClaudeFatal("the consolidation answer called no consolidation_plan tool")
        try:
            got = msgspec.convert(calls[0].input, _PlanInput)
        except msgspec.ValidationError as exc:
            raise ClaudeFatal(f"the consolidation plan does not fit its schema: {exc}") from None
        return self._plan(lessons, got)

    @staticmethod
    def _plan(lessons: Sequence[Lesson], got: _PlanInput) -> Plan:
        by_id = {x.id: x for x in lessons}
        merged: list[tuple[Lesson, list[str]]] = []
        used: set[str] = set()
        for m in got.merges:
            unknown = [i for i in m.lessons if i not in by_id]
            if unknown:
                raise ClaudeFatal(f"the consolidation plan names unknown lessons {unknown}")
            if used & set(m.lessons):
                raise ClaudeFatal("the consolidation plan merges one lesson twice")
            used |= set(m.lessons)
            group = sorted((by_id[i] for i in m.lessons), key=lambda x: (x.created_at, x.id))
            first = group[0]
            lid = "c" + hashlib.sha256("|".join(sorted(m.lessons)).encode()).hexdigest()[:15]
            reason = msgspec.structs.replace(first.reason, text=m.text or first.reason.text)
            merged.append((Lesson(id=lid, topic=first.topic, reason=reason,
                                  features=tuple(sorted({f for x in group for f in x.features})),
                                  author="consolidation:claude", created_at=group[-1].created_at,
                                  weight=sum(x.weight for x in group)),
                           [x.path for x in group]))
        return Plan(merged=merged, summaries=dict(got.summaries))
