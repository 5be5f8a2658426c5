"""Claude as the dreamer's reasoner: K candidates per round through a tool whose input schema
is a candidate's shape, refined with the critics' verdicts, cached, optionally batched. Plans,
code (search/replace patches) and text answers: each kind's tool, system prompt, task and
round rendering and parsing are in kinds.py; the layout below is the same for every kind.

The prompt is laid out for prompt caching. Tools, then the system prompt (breakpoint 1), then
one user turn: the task, the recalled lessons (breakpoint 2), one block per earlier round with
its candidates and verdicts (breakpoint 3 on the newest), and the round's request last. Every
round repeats the previous round's prompt byte for byte and appends to it, so round N reads
from cache everything round N-1 wrote. History is rendered as text in the user turn rather
than as assistant tool calls: the rendering is deterministic from the checkpointed trace (a
resumed dreamer rebuilds the same prefix), and extended thinking needs no signed thinking
blocks replayed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from anthropic.types import Message

from reverie.protocol import Reason, RoundTrace, Task, Usage
from reverie.runtime.memory import Memory

from ..reasoners.base import Proposal, Proposals, Reasoner, RoundState
from .client import BatchMiss, Claude, ClaudeFatal, ClaudeOptions, ClaudeUnavailable
from .kinds import CANDIDATE_TOOL, KINDS, SYSTEM_PROMPT, KindSpec, kind_spec, unusable
from .memory_tool import MemoryTool
from .stops import TRUNCATED, refusal_text

__all__ = ["CANDIDATE_TOOL", "SYSTEM_PROMPT", "ClaudeReasoner", "build_request", "parse_proposals", "render_lessons",
           "render_round"]

log = logging.getLogger("reverie.claude.reasoner")


def _cached(block: dict[str, Any]) -> dict[str, Any]:
    return block | {"cache_control": {"type": "ephemeral"}}


def render_round(r: RoundTrace, kind: str = "plan") -> str:
    """An earlier round's block: every candidate with its verdicts, as its task's kind renders
    them (a code candidate: its rationale, its diff, then every reason in full, the sandbox
    critic's failing tests with their messages and frames)."""
    spec = kind_spec(kind)
    lines = [f"Round {r.round}: your candidates and the critics' verdicts."]
    for j in r.candidates:
        lines += spec.render_judged(j)
    return "\n".join(lines)


def render_lessons(lessons: Sequence[Reason]) -> str:
    if not lessons:
        return "No lessons recalled from earlier tasks."
    return "Lessons critics taught on similar earlier tasks:\n" + "\n".join(
        f"- [{x.code}] {x.text}" for x in lessons)


def build_request(options: ClaudeOptions, task: Task, round: int, k: int, history: Sequence[RoundTrace],
                  lessons: Sequence[Reason], rules: Sequence[str] = ()) -> dict[str, Any]:
    """The Messages API request for one round (without model parameters), with the tool and
    system prompt of the task's kind. `rules`: the LLM critics' constitution, so candidates
    can satisfy it from round 1. Raises `ReverieError` for a task input its kind cannot read."""
    spec = kind_spec(task.kind)
    system = spec.system + (f"\n\n{options.instructions}" if options.instructions else "")
    if rules:
        system += "\n\nThe critics also judge by this constitution:\n" + "\n".join(
            f"{i}. {rule}" for i, rule in enumerate(rules, 1))
    content: list[dict[str, Any]] = [
        {"type": "text", "text": f"Task {task.id} (kind {task.kind}):\n{spec.render_task(task)}"},
        _cached({"type": "text", "text": render_lessons(lessons)}),
    ]
    rounds = [{"type": "text", "text": render_round(r, task.kind)} for r in history]
    if rounds:
        rounds[-1] = _cached(rounds[-1])
    content += rounds
    content.append({"type": "text", "text": f"Round {round}: propose {k} new candidate(s) with {spec.tool_name}."})
    return {"system": [_cached({"type": "text", "text": system})], "tools": [spec.tool],
            "messages": [{"role": "user", "content": content}]}


def parse_proposals(task: Task, message: Message, k: int) -> tuple[list[Proposal], str]:
    """Every call of the task kind's tool as a Proposal (at most `k` usable ones), and why the
    reasoner stops for this task ("" to go on). A call whose input does not fit the schema (or,
    for code, whose edits do not apply or touch a file that is not editable), a call cut off by
    a token limit, an answer without any call: an unusable Proposal with its code and reason,
    never an exception. A refusal is one unusable Proposal (code `refusal`, the API's details)
    and stops the task: asking the same way again would be refused again."""
    if message.stop_reason == "refusal":
        why = refusal_text(message)
        return [unusable("refusal", why)], why
    spec = kind_spec(task.kind)
    name = spec.tool_name
    blocks = list(message.content)
    cut = message.stop_reason in TRUNCATED and bool(blocks) and blocks[-1].type == "tool_use"
    out: list[Proposal] = []
    usable = 0
    for i, block in enumerate(blocks):
        if block.type != "tool_use" or block.name != name:
            continue
        if cut and i == len(blocks) - 1:
            out.append(unusable("truncated", f"the {name} call was cut off (stop_reason "
                                             f"{message.stop_reason}); raise max_tokens or ask for fewer candidates"))
            continue
        proposal = spec.parse_call(task, block.input)
        if proposal.invalid:
            out.append(proposal)
            continue
        if usable == k:
            continue
        usable += 1
        out.append(proposal)
    if not out:
        said = " ".join(b.text for b in blocks if b.type == "text")[:300]
        code, why = (("truncated", f"the answer was cut off (stop_reason {message.stop_reason})")
                     if message.stop_reason in TRUNCATED else ("no_call", f"the model called no {name} tool"))
        out.append(unusable(code, f"{why}{': ' + said if said else ''}"))
    return out, ""


def _custom_id(task_id: str, round: int, attempt: int) -> str:
    """The batch entry's id: the API allows `[a-zA-Z0-9_-]{1,64}`; a long task id is hashed."""
    tail = f"-r{round}-a{attempt}"
    if len(task_id) + len(tail) > 64:
        task_id = hashlib.sha256(task_id.encode()).hexdigest()[:32]
    return task_id + tail


class ClaudeReasoner(Reasoner):
    """`reasoner = "anthropic"`; `reasoner_options` are `ClaudeOptions`."""

    kinds: ClassVar[frozenset[str]] = frozenset(KINDS)
    """Plans, code (patches through `propose_patch`) and text (answers through `propose_answer`)."""

    stateful: ClassVar[bool] = True
    """A Message Batch in flight (`mode = "batch"`) survives a restart in the task's checkpoint."""

    def __init__(self, options: ClaudeOptions) -> None:
        self.options = options
        self._claude: Claude | None = None
        self.memory_tool: MemoryTool | None = None
        self._critics_rules: list[str] = []

    @property
    def rules(self) -> list[str]:
        return self.options.constitution or self._critics_rules

    def attach_rules(self, rules: Sequence[str]) -> None:
        """The constitution of the LLM critics the dreamer waits for (used unless the options
        give one): in the cached prefix, so round 1 already aims at it."""
        self._critics_rules = list(rules)

    def attach_memory(self, memory: Memory) -> None:
        """The dreamer's memory, for `memory_tool`: Claude's files live at `/claude/` (authored
        `claude:<model>`); the runtime's records are readable under `/memories/runtime/`."""
        if self.options.memory_tool:
            self.memory_tool = MemoryTool(memory, author=f"claude:{self.options.model}", root="/claude/",
                                          runtime_view="runtime")

    @property
    def claude(self) -> Claude:
        if self._claude is None:  # built on first use: inside the agent's event loop
            self._claude = Claude(self.options)
        return self._claude

    async def close(self) -> None:
        if self._claude is not None:
            await self._claude.close()

    def features(self, task: Task) -> frozenset[str]:
        """Recall keys: a plan's operations and constraints (as the offline reasoner's), a code
        task's files and definitions (as its domain's), else its kind."""
        return kind_spec(task.kind).features(task)

    async def propose(self, task: Task, round: int, k: int, history: Sequence[RoundTrace],
                      lessons: Sequence[Reason] = (), *, state: RoundState | None = None) -> Proposals:
        request = build_request(self.options, task, round, k, history, lessons, self.rules)
        params = self.claude.params(refining=round > 1, **request)
        deadline = state.deadline if state is not None else None
        if self.options.mode == "batch":
            message, usage = await self._batched(task, round, params, state)
        elif self.memory_tool is not None:
            message, usage = await self._with_memory(params, kind_spec(task.kind), self.memory_tool, deadline)
        else:
            message, usage = await self.claude.create(params, deadline=deadline)
        proposals, stop = parse_proposals(task, message, k)
        return Proposals(proposals=proposals, usage=usage, stop=stop)

    async def _with_memory(self, params: dict[str, Any], spec: KindSpec, tool: MemoryTool,
                           deadline: float | None) -> tuple[Message, Usage]:
        """Let Claude use the memory tool until it proposes (or `memory_turns` run out). The
        round's prompt stays the cached prefix; the tool turns follow it."""
        params = params | {"tools": [*params["tools"], tool.to_dict()]}
        messages = list(params["messages"])
        total: Usage | None = None
        for turn in range(self.options.memory_turns + 1):
            if turn == self.options.memory_turns:  # last turn: the memory tool is gone, propose now
                params["tools"] = [spec.tool]
            message, usage = await self.claude.create(params | {"messages": messages}, deadline=deadline)
            total = usage if total is None else total + usage
            calls = [b for b in message.content if b.type == "tool_use" and b.name == "memory"]
            if not calls or any(b.type == "tool_use" and b.name == spec.tool_name for b in message.content):
                return message, total
            results = [{"type": "tool_result", "tool_use_id": b.id, "content": await tool.call(b.input)}
                       for b in calls]
            messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
                         {"role": "user", "content": results}]
        raise AssertionError("unreachable")

    async def _batched(self, task: Task, round: int, params: dict[str, Any],
                       state: RoundState | None) -> tuple[Message, Usage]:
        """One batch per round; its id is checkpointed before waiting. Expired entries (and
        errors worth retrying) go into a fresh batch, up to `batch_attempts` batches per round.
        An invalid request, or an entry the operator cancelled, fails the task: sent again
        unchanged it would only cost more. A round that stops waiting (time budget, shutdown)
        cancels its batch, so it is not billed on."""
        pending = state.pending if state is not None else None
        attempt = int(pending.get("attempt", 1)) if pending else 1
        while True:
            custom_id = _custom_id(task.id, round, attempt)
            if pending and pending.get("custom_id") == custom_id:
                batch_id = str(pending["batch_id"])
                log.info("task %s round %d: picking up batch %s", task.id, round, batch_id)
            else:
                batch_id = await self.claude.submit_batch([(custom_id, params)])
                pending = {"round": round, "attempt": attempt, "batch_id": batch_id, "custom_id": custom_id}
                if state is not None:
                    await state.save(pending)
            try:
                results = await self._wait(batch_id)
            except asyncio.CancelledError:
                await asyncio.shield(self._give_up(batch_id, state))
                raise
            got = results.get(custom_id, BatchMiss("missing", "missing from the batch results"))
            if not isinstance(got, BatchMiss):
                return got
            if got.fatal or attempt >= self.options.batch_attempts:
                if state is not None:  # a redelivery of the task starts over with a fresh batch
                    await state.save(None)
                what = f"task {task.id} round {round}: batch entry {got.detail} in batch {attempt}"
                if got.fatal:
                    why = "cancelled by the operator" if got.kind == "canceled" else "the request must be fixed first"
                    raise ClaudeFatal(f"{what}: not sent again ({why})")
                raise ClaudeUnavailable(f"{what}, the last of batch_attempts")
            log.warning("task %s round %d: batch entry %s; sending it again", task.id, round, got.detail)
            attempt += 1

    async def _give_up(self, batch_id: str, state: RoundState | None) -> None:
        """Cancel a batch this round no longer waits for, and forget it: our own cancel must
        not read, after a restart, as the operator's."""
        await self.claude.cancel_batch(batch_id)
        if state is not None:
            try:
                await state.save(None)
            except Exception as exc:  # shutting down: the checkpoint keeps the id
                log.warning("forgetting cancelled batch %s: %s", batch_id, exc)

    async def _wait(self, batch_id: str) -> dict[str, tuple[Message, Usage] | BatchMiss]:
        while True:
            results = await self.claude.poll_batch(batch_id)
            if results is not None:
                return results
            await asyncio.sleep(self.options.batch_poll)

