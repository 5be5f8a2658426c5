"""An LLM critic: Claude judges each candidate against a constitution (natural-language rules
from the deploy config) and answers through a tool, so the verdict is structured. A harmful
flag quarantines the candidate exactly as the rule critic's does.

The constitution and the task are the cached prefix: the K candidates of a round (and every
later round of the task) are judged against one cached prompt.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from anthropic.types import Message

from reverie.protocol import Candidate, Decision, Error, Patch, Reason, Text, Usage, Verdict, artifact_of
from reverie.runtime import Agent, handler

from ..plans.spec import path_text
from .client import Claude, ClaudeConfigError, ClaudeFatal, ClaudeOptions, check_options
from .kinds import patch_text, tagged, task_text
from .stops import unusable_stop

__all__ = [
    "CALL_IT",
    "SYSTEM_PROMPT",
    "TOOL_NAME",
    "VERDICT_TOOL",
    "ClaudeCritic",
    "ClaudeCriticOptions",
    "build_request",
    "candidate_text",
    "numbered",
    "parse_verdict",
]

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
damage. A candidate is a plan's steps, a code task's patch (a unified diff of the task's \
files; name the files or tests concerned as its steps) or a text answer. Be specific: the \
dreamer refines its next candidates from your reasons."""


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


CALL_IT = f"Judge this candidate now: call the `{TOOL_NAME}` tool exactly once, and answer with nothing else."
"""Where the model refuses a forced tool choice, the request asks in words instead."""


def candidate_text(cand: Candidate) -> str:
    """What the critic is shown of a candidate: a plan's steps (as `steps: ...`), a patch as the
    unified diff of the task's files, a text answer; then its rationale."""
    art = artifact_of(cand)
    if isinstance(art, Patch):
        shown = "patch (unified diff):\n" + tagged("diff", cand.text or patch_text(cand.task, art))
    elif isinstance(art, Text):
        shown = "answer:\n" + tagged("answer", art.text)
    else:
        shown = f"steps: {path_text(art.steps) or cand.text}"
    return f"{shown}\nrationale: {cand.rationale or '-'}"


def build_request(options: ClaudeCriticOptions, cand: Candidate, tool_choice: dict[str, Any] | None) -> dict[str, Any]:
    """The judging request; `tool_choice` None (the model refuses forcing): `auto`, and the
    candidate's block says the tool must be called."""
    system = (f"{SYSTEM_PROMPT}\n\nConstitution:\n{numbered(options.constitution)}"
              + (f"\n\n{options.instructions}" if options.instructions else ""))
    task = cand.task
    content = [
        {"type": "text", "text": task_text(task), "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": f"Candidate {cand.id} (round {cand.round}, #{cand.index + 1}):\n"
                                 f"{candidate_text(cand)}" + ("" if tool_choice else f"\n\n{CALL_IT}")},
    ]
    request: dict[str, Any] = {
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "tools": [VERDICT_TOOL], "messages": [{"role": "user", "content": content}]}
    if tool_choice is not None:
        request["tool_choice"] = tool_choice
    return request


def parse_verdict(message: Message, cand: Candidate, critic: str, usage: Usage | None = None) -> Verdict | Error:
    """The verdict the model gave, or the `Error` that says why there is none: a refusal, an
    answer cut off, no call, a call that does not fit the schema. Never a guess."""
    stop = unusable_stop(message)
    if stop is not None:
        return Error(code=stop[0], message=stop[1], subject=cand.id, usage=usage)
    calls = [b for b in message.content if b.type == "tool_use" and b.name == TOOL_NAME]
    if not calls:
        said = " ".join(b.text for b in message.content if b.type == "text")[:300]
        return Error(code="judge_no_call", message=f"the model called no {TOOL_NAME} tool"
                     + (f": {said}" if said else ""), subject=cand.id, usage=usage)
    try:
        got = msgspec.convert(calls[0].input, _VerdictInput)
    except msgspec.ValidationError as exc:
        return Error(code="judge_off_schema", message=f"the model's verdict does not fit the schema: {exc}",
                     subject=cand.id, usage=usage)
    decision = _DECISIONS[got.decision]
    code = {"accept": "llm", "reject": "constitution", "harmful": "harmful"}[got.decision]
    reasons = tuple(Reason(code=code, text=(f"rule {r.rule}: " if r.rule else "") + r.text,
                           ops=tuple(r.steps)) for r in got.reasons)
    score = got.score if got.score is not None else (1.0 if decision is Decision.ACCEPT else 0.0)
    return Verdict(candidate_id=cand.id, critic=critic, decision=decision, score=score, reasons=reasons,
                   usage=usage)


class ClaudeCritic(Agent):
    """`kind = "llm-critic"`: options are `ClaudeOptions` with a `constitution`."""

    role: ClassVar[str] = "critic"
    Options = ClaudeCriticOptions

    @classmethod
    def check_options(cls, options: ClaudeCriticOptions) -> None:
        check_options(options)
        if not options.constitution:
            raise ClaudeConfigError("constitution", "an llm-critic needs a list of rules in natural language")
        if options.mode != "sync":
            raise ClaudeConfigError("mode", "an llm-critic answers while the dreamer waits: mode must be \"sync\"")

    async def on_start(self) -> None:
        self.claude = Claude(self.options)

    async def on_stop(self) -> None:
        await self.claude.close()

    @handler("dream.*.cand", concurrency=16)
    async def judge(self, cand: Candidate) -> Verdict | Error:
        """A failure to judge is an `Error` reply carrying why (and what it cost): the dreamer
        counts this critic as missing (not accepting) and shows the reason, never a verdict
        it did not give. An outage is waited out no longer than one request `timeout`: the
        dreamer asks again."""
        request = build_request(self.options, cand, self.claude.tool_choice(TOOL_NAME))
        try:
            message, usage = await self.claude.create(self.claude.params(refining=False, **request),
                                                      deadline=time.monotonic() + self.options.timeout)
        except ClaudeFatal as exc:
            self.ctx.counters["judge.failed"] += 1
            return Error(code="judge_failed", message=str(exc), subject=cand.id)
        self.ctx.counters["llm.requests"] += 1
        self.ctx.counters["llm.input_tokens"] += usage.prompt_tokens
        self.ctx.counters["llm.cache_read_tokens"] += usage.cache_read_input_tokens
        self.ctx.counters["llm.output_tokens"] += usage.output_tokens
        reply = parse_verdict(message, cand, self.ctx.name, usage)
        if isinstance(reply, Error):
            self.ctx.counters[f"judge.{reply.code}"] += 1
        return reply
