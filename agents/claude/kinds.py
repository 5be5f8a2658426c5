"""What the Claude reasoner (and the LLM critic) says and reads per task kind: the tool a
candidate comes through, the system prompt, how a task and an earlier round's candidates are
rendered, how a tool call becomes a `Proposal`, and what makes tasks similar.

`plan` (and any kind without its own entry: a config's own domain) proposes steps through
`propose_candidate`; `code` proposes a patch of search/replace edits through `propose_patch`,
checked against the task's files here, so an edit that does not apply is an unusable proposal
and never reaches the sandbox; `text` proposes an answer through `propose_answer`. Every
rendering is deterministic from the task and the checkpointed trace, so each round's prompt
repeats the previous one byte for byte (see reasoner.py for the cache layout).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from reverie.protocol import Decision, Edit, JudgedCandidate, Patch, Reason, ReverieError, Task, Text, artifact_of

from ..code.patch import PatchFailed, apply_edits, changed_paths, unified_diff
from ..code.task import CodeInput, parse_code
from ..domains.code import code_features
from ..domains.text import TextDomain
from ..plans.spec import PlanSpecError, evaluate, parse_spec, path_text
from ..reasoners.base import Proposal
from ..reasoners.offline import plan_features

__all__ = ["ANSWER_TOOL", "CANDIDATE_TOOL", "CODE", "KINDS", "PATCH_TOOL", "PLAN", "SYSTEM_PROMPT", "TEXT",
           "UNUSABLE_TEXT", "KindSpec", "kind_spec", "patch_text", "tagged", "task_text", "unusable"]

MAX_STEPS = 64
MAX_EDITS = 32
MAX_ANSWER = 50_000
UNUSABLE_TEXT = "(unusable model output)"


@dataclass(frozen=True)
class KindSpec:
    """How the reasoner dreams about one task kind through Claude."""

    tool: dict[str, Any]
    """The tool one candidate comes through (its `input_schema` is the candidate's shape)."""
    system: str
    """The system prompt (the constitution and `instructions` are appended to it)."""
    render_task: Callable[[Task], str]
    """The task's input as the prompt shows it (raises `ReverieError` for an unusable input)."""
    parse_call: Callable[[Task, object], Proposal]
    """One tool call's input as a Proposal: usable, or unusable with its reason; never raises."""
    render_judged: Callable[[JudgedCandidate], list[str]]
    """One candidate of an earlier round with its verdicts, as lines of the round's block."""
    features: Callable[[Task], frozenset[str]]
    """Recall keys of the task."""

    @property
    def tool_name(self) -> str:
        return str(self.tool["name"])


def unusable(code: str, reason: str) -> Proposal:
    return Proposal(steps=(), text=UNUSABLE_TEXT, invalid=reason, invalid_code=code)


def _json(task: Task) -> str:
    return json.dumps(task.input, sort_keys=True, indent=1, default=str)


def task_text(task: Task) -> str:
    """The task block of a prompt: its id and kind, then its input as its kind renders it (an
    input its kind cannot read falls back to JSON: the LLM critic judges it all the same)."""
    try:
        body = kind_spec(task.kind).render_task(task)
    except ReverieError:
        body = _json(task)
    return f"Task {task.id} (kind {task.kind}):\n{body}"


def _reason_line(x: Reason) -> str:
    """One finding in full: code, text, what it concerns where the text does not say, and the
    places in the task's files it went through (a failing test's frames)."""
    line = f"[{x.code}] {x.text}"
    if x.ops and not all(op in x.text for op in x.ops):
        line += f" (concerns {', '.join(x.ops)})"
    if x.where:
        line += f" (through {', '.join(x.where)})"
    return line


def _verdict_lines(j: JudgedCandidate) -> list[str]:
    lines = []
    for v in j.verdicts:
        quiet = v.reasons or v.decision is Decision.ACCEPT
        lines.append(f"  {v.critic}: {v.decision.value}" + ("" if quiet else " (no reasons given)"))
        lines += [f"    {_reason_line(x)}" for x in v.reasons]
    why = {m.critic: f" ({m.code}: {m.message})" for m in j.why_missing}
    lines += [f"  no answer from: {name}{why.get(name, '')}" for name in j.missing]
    return lines


def tagged(tag: str, body: str, attrs: str = "") -> str:
    """`body` between `<tag attrs>` and `</tag>` lines."""
    return f"<{tag}{attrs}>\n{body}{'' if body.endswith(chr(10)) or not body else chr(10)}</{tag}>"


# ------------------------------------------------------------------ plan (and kinds of a config's own)


CANDIDATE_TOOL: dict[str, Any] = {
    "name": "propose_candidate",
    "description": "Propose one candidate path for the task. Call it once per candidate.",
    "input_schema": {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "minItems": 1, "maxItems": MAX_STEPS,
                      "items": {"type": "string", "minLength": 1, "maxLength": 200},
                      "description": "The path, one step (for plan tasks: one operation name) per item."},
            "rationale": {"type": "string", "maxLength": 2000,
                          "description": "Why this path satisfies the task and every critic's earlier reasons."},
        },
        "required": ["steps", "rationale"],
        "additionalProperties": False,
    },
}

_INTRO = """You are the dreamer of a reverie agent swarm. For each task you propose \
candidate paths; critic agents judge every candidate against constraint rules and answer \
accept, reject (with reasons) or harmful. A harmful candidate is quarantined and never run."""

SYSTEM_PROMPT = _INTRO + """

Each round, call the `propose_candidate` tool once per candidate, with distinct candidates. \
For a plan task, `steps` are operation names from the task's `operations`, in order, walking \
from `start` to `goal` (each operation applies in its `from` state and leads to its `to` state). \
From round 2 on, read every critic's reasons for the earlier candidates and propose only \
candidates that address all of them; never repeat a rejected candidate. Prefer short, low-risk \
paths. Answer with tool calls only."""


class _CandidateInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    steps: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]],
                     msgspec.Meta(min_length=1, max_length=MAX_STEPS)]
    rationale: Annotated[str, msgspec.Meta(max_length=2000)]  # required, as in CANDIDATE_TOOL's schema


def _plan_answer(task: Task, steps: list[str]) -> dict[str, object]:
    if task.kind == "plan":
        try:
            ev = evaluate(parse_spec(task.input), steps)
        except PlanSpecError:
            return {"steps": steps}
        return {"steps": steps, "duration": ev.duration, "risk": ev.risk}
    return {"steps": steps}


def _parse_plan(task: Task, raw: object) -> Proposal:
    try:
        cand = msgspec.convert(raw, _CandidateInput)
    except msgspec.ValidationError as exc:
        return unusable("off_schema", f"the model's candidate does not fit the propose_candidate schema: {exc}")
    return Proposal(steps=tuple(cand.steps), text=path_text(cand.steps), rationale=cand.rationale,
                    answer=_plan_answer(task, cand.steps))


def _render_plan(j: JudgedCandidate) -> list[str]:
    c = j.candidate
    lines = [f"#{c.index + 1} {j.outcome.value}: {path_text(c.steps) or c.text}"]
    for v in j.verdicts:
        reasons = "; ".join(f"[{x.code}] {x.text}" for x in v.reasons) or "no reasons given"
        lines.append(f"  {v.critic}: {v.decision.value} ({reasons})")
    if j.missing:
        lines.append(f"  no answer from: {', '.join(j.missing)}")
    return lines


def _plan_features(task: Task) -> frozenset[str]:
    return plan_features(task) if task.kind == "plan" else frozenset({f"kind:{task.kind}"})


PLAN = KindSpec(tool=CANDIDATE_TOOL, system=SYSTEM_PROMPT, render_task=_json, parse_call=_parse_plan,
                render_judged=_render_plan, features=_plan_features)


# ------------------------------------------------------------------ code


PATCH_TOOL: dict[str, Any] = {
    "name": "propose_patch",
    "description": (
        "Propose one candidate patch for the code task: edits to its editable files. Call it once per candidate. "
        "Each edit names a file by its path and replaces `search` with `replace`; `search` must be an exact, "
        "unique excerpt of that file's content (whitespace and indentation included, occurring exactly once). "
        "The edits of one call apply in order, each to the file as the edits before it left it. Omit `search` "
        "only to replace a whole file: then `replace` is that file's complete new content."),
    "input_schema": {
        "type": "object",
        "properties": {
            "edits": {"type": "array", "minItems": 1, "maxItems": MAX_EDITS, "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "minLength": 1, "description": "An editable file's path."},
                    "search": {"type": "string", "minLength": 1,
                               "description": "An exact excerpt of the file that occurs once in it; omitted: "
                                              "`replace` is the whole new file."},
                    "replace": {"type": "string", "description": "What replaces `search` (or the whole file)."},
                },
                "required": ["path", "replace"],
                "additionalProperties": False}},
            "rationale": {"type": "string", "maxLength": 2000,
                          "description": "What the patch fixes and why it satisfies the tests and every critic's "
                                         "earlier reasons."},
        },
        "required": ["edits", "rationale"],
        "additionalProperties": False,
    },
}

_CODE_SYSTEM = _INTRO + """

Each round, call the `propose_patch` tool once per candidate, with distinct candidates. A code \
task gives its files with their paths, a test command and the files you may edit; a candidate is \
a patch: edits of editable files only, each replacing `search` (copied exactly from the file, \
whitespace and indentation included, long enough to occur exactly once) with `replace`. A sandbox \
critic may apply each patch and run the tests. From round 2 on, read the earlier rounds' test \
failures (the failing tests, their messages and the lines they went through) and every critic's \
reasons, and propose only patches that address all of them; never repeat a rejected patch. Fix \
the cause in the code, never the tests; prefer small patches. Answer with tool calls only."""


class _EditInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    replace: str
    search: Annotated[str, msgspec.Meta(min_length=1)] | None = None


class _PatchInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    edits: Annotated[list[_EditInput], msgspec.Meta(min_length=1, max_length=MAX_EDITS)]
    rationale: Annotated[str, msgspec.Meta(max_length=2000)]


def _render_code(task: Task) -> str:
    code = parse_code(task.input)
    editable = set(code.editable_paths)
    others = sorted(p for p in code.files if p not in editable)
    lines = [f"Instruction: {code.instruction}",
             f"Test command: {code.test} (run in the project's root; it must pass within {code.timeout:g}s)",
             f"Editable files: {', '.join(sorted(editable))}",
             f"Read-only files: {', '.join(others) or '(none)'}",
             "",
             "The files:"]
    for path in sorted(code.files):
        attrs = f" path={json.dumps(path)} editable=\"{'yes' if path in editable else 'no'}\""
        lines.append(tagged("file", code.files[path], attrs))
    return "\n".join(lines)


def _excerpt(text: str, limit: int = 120) -> str:
    return json.dumps(text if len(text) <= limit else text[:limit] + "...")


def _parse_code(task: Task, raw: object) -> Proposal:
    try:
        call = msgspec.convert(raw, _PatchInput)
    except msgspec.ValidationError as exc:
        return unusable("off_schema", f"the model's patch does not fit the propose_patch schema: {exc}")
    try:
        code: CodeInput = parse_code(task.input)
    except ReverieError as exc:
        return unusable("off_schema", f"the code task's input is unusable: {exc}")
    editable = set(code.editable_paths)
    protected = sorted({e.path for e in call.edits if e.path not in editable})
    if protected:
        return unusable("off_schema", f"the patch edits files it may not edit: {', '.join(protected)} (editable: "
                                      f"{', '.join(sorted(editable))})")
    edits = tuple(Edit(path=e.path, replace=e.replace, search=e.search) for e in call.edits)
    after = code.files
    for i, edit in enumerate(edits, 1):
        try:
            after = apply_edits(after, (edit,))
        except PatchFailed as exc:
            return unusable("off_schema", f"the patch does not apply: edit {i} of {exc.path}: {exc.why} (search "
                                          f"text {_excerpt(edit.search or '')}); copy `search` exactly from the "
                                          f"file as the edits before it leave it")
    if not changed_paths(code.files, after):
        return unusable("off_schema", "the patch changes nothing")
    return Proposal(artifact=Patch(edits=edits), text=unified_diff(code.files, after), rationale=call.rationale)


def _edits_text(edits: Sequence[Edit]) -> str:
    parts = []
    for e in edits:
        parts.append(f"in {e.path}, replace the whole file with:\n{e.replace}" if e.search is None
                     else f"in {e.path}, replace:\n{e.search}\nwith:\n{e.replace}")
    return "\n".join(parts)


def patch_text(task: Task, patch: Patch) -> str:
    """A patch as a unified diff of the task's files; its raw edits where it does not apply."""
    try:
        files = parse_code(task.input).files
        return unified_diff(files, apply_edits(files, patch.edits))
    except ReverieError:
        return _edits_text(patch.edits)


def _render_judged_code(j: JudgedCandidate) -> list[str]:
    c = j.candidate
    art = artifact_of(c)
    lines = [f"#{c.index + 1} {j.outcome.value}: {c.rationale or c.text or '(no rationale)'}"]
    if isinstance(art, Patch):
        lines.append(tagged("diff", c.text or _edits_text(art.edits)))
    return lines + _verdict_lines(j)


def _code_features(task: Task) -> frozenset[str]:
    return code_features(parse_code(task.input))


CODE = KindSpec(tool=PATCH_TOOL, system=_CODE_SYSTEM, render_task=_render_code, parse_call=_parse_code,
                render_judged=_render_judged_code, features=_code_features)


# ------------------------------------------------------------------ text


ANSWER_TOOL: dict[str, Any] = {
    "name": "propose_answer",
    "description": "Propose one candidate answer to the text task. Call it once per candidate.",
    "input_schema": {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_ANSWER,
                     "description": "The complete answer, as the asker will read it."},
            "rationale": {"type": "string", "maxLength": 2000,
                          "description": "Why this answer satisfies the prompt and every critic's earlier reasons."},
        },
        "required": ["text", "rationale"],
        "additionalProperties": False,
    },
}

_TEXT_SYSTEM = _INTRO + """

Each round, call the `propose_answer` tool once per candidate, with distinct candidates. A text \
task gives a prompt (and maybe context); a candidate is a complete answer in `text`, ready to be \
handed to the asker as it stands. From round 2 on, read every critic's reasons for the earlier \
answers and propose only answers that address all of them; never repeat a rejected answer. \
Answer with tool calls only."""


class _AnswerInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ANSWER)]
    rationale: Annotated[str, msgspec.Meta(max_length=2000)]


def _render_text(task: Task) -> str:
    given = TextDomain().parse(task)
    return tagged("prompt", given.prompt) + (f"\n{tagged('context', given.context)}" if given.context else "")


def _parse_text(task: Task, raw: object) -> Proposal:
    try:
        call = msgspec.convert(raw, _AnswerInput)
    except msgspec.ValidationError as exc:
        return unusable("off_schema", f"the model's answer does not fit the propose_answer schema: {exc}")
    if not call.text.strip():
        return unusable("off_schema", "the answer is blank")
    return Proposal(artifact=Text(text=call.text), text=call.text, rationale=call.rationale,
                    answer={"text": call.text})


def _render_judged_text(j: JudgedCandidate) -> list[str]:
    c = j.candidate
    art = artifact_of(c)
    lines = [f"#{c.index + 1} {j.outcome.value}: {c.rationale or '(no rationale)'}"]
    if isinstance(art, Text):
        lines.append(tagged("answer", art.text))
    elif c.text:
        lines.append(c.text)
    return lines + _verdict_lines(j)


TEXT = KindSpec(tool=ANSWER_TOOL, system=_TEXT_SYSTEM, render_task=_render_text, parse_call=_parse_text,
                render_judged=_render_judged_text, features=lambda task: frozenset({"kind:text"}))


KINDS: dict[str, KindSpec] = {"plan": PLAN, "code": CODE, "text": TEXT}
"""The kinds with their own tool and prompt; any other kind is dreamt about as a plan is."""


def kind_spec(kind: str) -> KindSpec:
    return KINDS.get(kind, PLAN)
