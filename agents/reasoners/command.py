"""Any external proposer as a reasoner: a local model's CLI, a script in any language.

Each round the command gets one JSON request on stdin and answers JSON on stdout:

    request:  {"task": {...}, "round": 2, "k": 3, "history": [...], "lessons": [...]}
    answer:   {"proposals": [{"text": "...", "rationale": "...", "steps": [...]}, ...]}
              (or the bare list); a code task's proposal carries
              "edits": [{"path": "src/x.py", "search": "old", "replace": "new"}]

`history` is the task's earlier rounds with every verdict, as the result's `trace` shows them.
A command that exits non-zero or overruns its `timeout` fails the round (one unusable proposal
saying why, with the tail of its stderr), never the dreamer; output that is not such JSON is an
unusable proposal too. The command runs without a shell, in the dreamer's environment.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import msgspec

from reverie.protocol import Edit, Patch, Reason, RoundTrace, Task, Text

from .base import Proposal, Reasoner, RoundState

__all__ = ["COMMAND_KINDS", "CommandOptions", "CommandReasoner", "parse_answer"]

COMMAND_KINDS = frozenset({"plan", "code", "text"})
MAX_OUTPUT = 8 * 1024 * 1024


class CommandOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    command: Annotated[list[str], msgspec.Meta(min_length=1)]
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    kinds: list[str] | None = None
    """The task kinds the command can answer; default: plan, code and text."""
    cwd: str | None = None


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: str = ""
    rationale: str = ""
    steps: tuple[str, ...] = ()
    edits: tuple[Edit, ...] | None = None
    answer: dict[str, Any] = {}


class _Answer(msgspec.Struct, frozen=True):
    proposals: list[_Wire]


_decode_answer = msgspec.json.Decoder(_Answer | list[_Wire])


def parse_answer(data: bytes, kind: str, k: int) -> list[Proposal]:
    """The command's stdout as proposals (at most `k`); one unusable proposal when it is not
    the answer's JSON shape."""
    try:
        raw = _decode_answer.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return [Proposal(invalid=f"the command's output is not a proposals answer: {exc}", invalid_code="off_schema")]
    wires = raw.proposals if isinstance(raw, _Answer) else raw
    out = []
    for w in wires[:k]:
        if w.edits is not None:
            out.append(Proposal(text=w.text, rationale=w.rationale, answer=w.answer, artifact=Patch(edits=w.edits)))
        elif kind == "text":
            out.append(Proposal(text=w.text, rationale=w.rationale, answer=w.answer, artifact=Text(text=w.text)))
        else:
            out.append(Proposal(steps=w.steps, text=w.text or " -> ".join(w.steps), rationale=w.rationale,
                                answer=w.answer or ({"steps": list(w.steps)} if w.steps else {})))
    return out


class CommandReasoner(Reasoner):
    kinds: ClassVar[frozenset[str]] = COMMAND_KINDS

    def __init__(self, options: CommandOptions) -> None:
        self.options = options

    async def propose(
        self, task: Task, round: int, k: int, history: Sequence[RoundTrace],
        lessons: Sequence[Reason] = (), *, state: RoundState | None = None,
    ) -> list[Proposal]:
        request = msgspec.json.encode({"task": task, "round": round, "k": k, "history": list(history),
                                       "lessons": list(lessons)})
        opts = self.options
        try:
            proc = await asyncio.create_subprocess_exec(
                *opts.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=opts.cwd, env=dict(os.environ), limit=MAX_OUTPUT)
        except OSError as exc:
            return [_failed(f"cannot start {opts.command[0]!r}: {exc.strerror or exc}")]
        try:
            async with asyncio.timeout(opts.timeout):
                out, err = await proc.communicate(request)
        except TimeoutError:
            proc.kill()
            _, err = await proc.communicate()
            return [_failed(f"{opts.command[0]} did not answer within {opts.timeout:g}s{_tail(err)}")]
        if proc.returncode != 0:
            return [_failed(f"{opts.command[0]} exited with {proc.returncode}{_tail(err)}")]
        return parse_answer(out, task.kind, k)


def _failed(why: str) -> Proposal:
    return Proposal(invalid=why, invalid_code="command_failed")


def _tail(err: bytes, limit: int = 500) -> str:
    text = err.decode(errors="replace").strip()
    if not text:
        return ""
    return ": " + (text if len(text) <= limit else "..." + text[-limit:])
