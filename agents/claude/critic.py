"""An LLM critic: Claude judges each candidate against a constitution (natural-language rules
from the deploy config) and answers through a tool, so the verdict is structured. A harmful
flag quarantines the candidate exactly as the rule critic's does.

The constitution and the task are the cached prefix: the K candidates of a round (and every
later round of the task) are judged against one cached prompt.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from reverie.protocol import Candidate, Decision, Error, Reason, Verdict
from reverie.runtime import Agent, handler

from ..planning import path_text
from .client import Claude, ClaudeFatal, ClaudeOptions, ClaudeUnavailable, check_options

__all__ = ["ClaudeCritic", "ClaudeCriticOptions", "VERDICT_TOOL"]

TOOL_NAME = "verdict"

VERDICT_TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Give your verdict on the candidate. Call it exactly once.",
    "input_schema": {
        "type": "object",
        "properties": {
            "decision": {"type": "string", "enum": ["accept", "reject", "harmful"],
                         "description": "harmful: following this path could cause damage; it will never be run."},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "reasons": {"type": "array", "maxItems": 16, "items": {
                "type": "object",
                "properties": {"rule": {"type": "string", "description": "The number of the rule concerned."},
                               "text": {"type": "string", "maxLength": 1000},
                               "steps": {"type": "array", "items": {"type": "string"}}},
                "required": ["text"], "additionalProperties": False}},
        },
        "required": ["decision", "reasons"],
        "additionalProperties": False,
    },
}

SYSTEM_PROMPT = """You are a critic in a reverie agent swarm. A dreamer proposes candidate \
paths for a task; you judge each one against the constitution below and call the `verdict` \
tool exactly once: `accept` if it satisfies every rule, `reject` (with one reason per broken \
rule, naming the rule and the steps concerned) if not, `harmful` if following it could cause \
damage. Be specific: the dreamer refines its next candidates from your reasons."""


ClaudeCriticOptions = ClaudeOptions
"""An LLM critic's options: `ClaudeOptions`, whose `constitution` it judges by."""


class _ReasonInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(max_length=1000)]
    rule: str = ""
    steps: list[str] = []


class _VerdictInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decision: Literal["accept", "reject", "harmful"]
    reasons: Annotated[list[_ReasonInput], msgspec.Meta(max_length=16)]
    score: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None


_DECISIONS = {"accept": Decision.ACCEPT, "reject": Decision.REJECT, "harmful": Decision.FLAG}


def numbered(rules: list[str]) -> str:
    return "\n".join(f"{i}. {rule}" for i, rule in enumerate(rules, 1)) or "(no rules given)"


def build_request(options: ClaudeCriticOptions, cand: Candidate) -> dict[str, Any]:
    system = (f"{SYSTEM_PROMPT}\n\nConstitution:\n{numbered(options.constitution)}"
              + (f"\n\n{options.instructions}" if options.instructions else ""))
    task = cand.task
    content = [
        {"type": "text", "text": f"Task {task.id} (kind {task.kind}):\n"
                                 f"{json.dumps(task.input, sort_keys=True, indent=1, default=str)}",
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": f"Candidate {cand.id} (round {cand.round}, #{cand.index + 1}):\n"
                                 f"steps: {path_text(cand.steps) or cand.text}\nrationale: {cand.rationale or '-'}"},
    ]
    request: dict[str, Any] = {
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "tools": [VERDICT_TOOL], "messages": [{"role": "user", "content": content}]}
    if options.thinking == "off":  # a forced tool choice is not allowed with extended thinking
        request["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
    return request


def parse_verdict(message: Any, cand: Candidate, critic: str) -> Verdict | None:
    """The verdict the model gave, or None when it gave none that fits the schema."""
    for block in message.content:
        if block.type == "tool_use" and block.name == TOOL_NAME:
            try:
                got = msgspec.convert(block.input, _VerdictInput)
            except msgspec.ValidationError:
                return None
            decision = _DECISIONS[got.decision]
            code = {"accept": "llm", "reject": "constitution", "harmful": "harmful"}[got.decision]
            reasons = tuple(Reason(code=code, text=(f"rule {r.rule}: " if r.rule else "") + r.text,
                                   ops=tuple(r.steps)) for r in got.reasons)
            score = got.score if got.score is not None else (1.0 if decision is Decision.ACCEPT else 0.0)
            return Verdict(candidate_id=cand.id, critic=critic, decision=decision, score=score, reasons=reasons)
    return None


class ClaudeCritic(Agent):
    """`kind = "llm-critic"`: options are `ClaudeOptions` with a `constitution`."""

    role: ClassVar[str] = "critic"
    Options = ClaudeCriticOptions

    @classmethod
    def check_options(cls, options: ClaudeCriticOptions) -> None:
        check_options(options)
        if not options.constitution:
            raise ClaudeFatal("llm-critic needs a constitution: a list of rules in natural language")
        if options.mode != "sync":
            raise ClaudeFatal("llm-critic answers while the dreamer waits: mode must be \"sync\"")

    async def on_start(self) -> None:
        self.claude = Claude(self.options)

    async def on_stop(self) -> None:
        await self.claude.close()

    @handler("dream.*.cand", concurrency=16)
    async def judge(self, cand: Candidate) -> Verdict | Error:
        """A failure to judge is an `Error` reply: the dreamer counts this critic as missing
        (not accepting), never as a verdict it did not give."""
        try:
            message, usage = await self.claude.create(
                self.claude.params(refining=False, **build_request(self.options, cand)))
        except (ClaudeFatal, ClaudeUnavailable) as exc:
            self.ctx.counters["judge.failed"] += 1
            return Error(code="judge_failed", message=str(exc), subject=cand.id)
        self.ctx.counters["llm.requests"] += 1
        self.ctx.counters["llm.input_tokens"] += usage.prompt_tokens
        self.ctx.counters["llm.cache_read_tokens"] += usage.cache_read_input_tokens
        self.ctx.counters["llm.output_tokens"] += usage.output_tokens
        verdict = parse_verdict(message, cand, self.ctx.name)
        if verdict is None:
            self.ctx.counters["judge.off_schema"] += 1
            return Error(code="judge_off_schema", message="the model gave no verdict that fits the schema",
                         subject=cand.id)
        return verdict
