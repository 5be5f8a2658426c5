"""How a dream is written into the agent's memory, and read back to resume it.

One round is one atomic batch: the round's candidates and verdicts as memories at
`/tasks/<id>/rounds/<n>/cand/<i>[/verdicts/<critic>]`, typed edges between them (round
derived-from task, round refines the previous round, candidate derived-from round, candidate
rejected-by or supported-by a verdict), rejected branches invalidated (kept for audit,
excluded from recall), their reasons stored as lessons, and the task's checkpoint. A dreamer
killed at any moment resumes from the last committed round.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec

from reverie.protocol import Decision, JudgedCandidate, Result, RoundTrace, Task
from reverie.runtime.memory import Batch, EdgeKind, Lesson

_json = msgspec.json.Encoder()


class DreamStatus(str, enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


class DreamCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A task's cognitive state after its last committed round."""

    task: Task
    status: DreamStatus
    trace: tuple[RoundTrace, ...] = ()
    answers: dict[str, Any] = {}
    spent: float = 0.0
    """Seconds of dreaming spent in earlier sessions (the time budget spans restarts)."""
    resumes: int = 0
    replica: int = 0
    owner_pid: int = 0
    """The process dreaming this task; a restarted replica resumes checkpoints of dead owners."""
    pending: dict[str, Any] | None = None
    """The reasoner's work in flight for the next round (a Message Batch id), saved before it
    waits, so a restarted dreamer picks it up instead of paying for it twice."""


_checkpoint_codec = msgspec.msgpack.Decoder(DreamCheckpoint)
_encoder = msgspec.msgpack.Encoder()


def encode_checkpoint(cp: DreamCheckpoint) -> bytes:
    return _encoder.encode(cp)


def decode_checkpoint(data: bytes) -> DreamCheckpoint:
    return _checkpoint_codec.decode(data)


def task_path(task_id: str) -> str:
    return f"/tasks/{task_id}"


def round_path(task_id: str, rnd: int) -> str:
    return f"/tasks/{task_id}/rounds/{rnd}"


def candidate_path(task_id: str, rnd: int, index: int) -> str:
    return f"{round_path(task_id, rnd)}/cand/{index}"


def record_task(batch: Batch, task: Task) -> None:
    batch.put(task_path(task.id), _json.encode(task))


def record_round(batch: Batch, task: Task, trace: RoundTrace, features: Iterable[str]) -> list[Lesson]:
    """The round's candidates, verdicts, edges, pruned branches and lessons (returned, to share)."""
    rpath = round_path(task.id, trace.round)
    summary = {"round": trace.round, "elapsed": trace.elapsed,
               "outcomes": [j.outcome.value for j in trace.candidates]}
    batch.put(rpath, _json.encode(summary))
    batch.link(rpath, EdgeKind.DERIVED_FROM, task_path(task.id))
    if trace.round > 1:
        batch.link(rpath, EdgeKind.REFINES, round_path(task.id, trace.round - 1))
    feats = tuple(sorted(features))
    learned: list[Lesson] = []
    for judged in trace.candidates:
        cand = judged.candidate
        cpath = candidate_path(task.id, trace.round, cand.index)
        batch.put(cpath, _json.encode({"id": cand.id, "steps": cand.steps, "text": cand.text,
                                       "rationale": cand.rationale, "outcome": judged.outcome.value,
                                       "missing": judged.missing}))
        batch.link(cpath, EdgeKind.DERIVED_FROM, rpath)
        for verdict in judged.verdicts:
            vpath = f"{cpath}/verdicts/{verdict.critic}"
            batch.put(vpath, _json.encode(verdict))
            if verdict.decision is Decision.ACCEPT:
                batch.link(vpath, EdgeKind.SUPPORTS, cpath)
            else:
                batch.link(cpath, EdgeKind.REJECTED_BY, vpath)
        if judged.outcome is not Decision.ACCEPT:
            batch.invalidate(cpath, _why(judged))
            for lesson in lessons_of(task, judged, feats):
                batch.lesson(lesson)
                learned.append(lesson)
    return learned


def lessons_of(task: Task, judged: JudgedCandidate, features: tuple[str, ...]) -> list[Lesson]:
    """One lesson per distinct reason a critic gave against the candidate."""
    seen: dict[str, Lesson] = {}
    for verdict in judged.verdicts:
        if verdict.decision is Decision.ACCEPT:
            continue
        for reason in verdict.reasons:
            key = f"{task.id}|{reason.code}|{','.join(reason.ops)}|{reason.limit}"
            lid = hashlib.sha256(key.encode()).hexdigest()[:16]
            seen.setdefault(lid, Lesson(id=lid, topic=reason.code, reason=reason, features=features,
                                        task_id=task.id, author=verdict.critic))
    return list(seen.values())


def _why(judged: JudgedCandidate) -> str:
    parts = [f"{v.critic}: {r.code}" for v in judged.verdicts for r in v.reasons]
    if judged.missing:
        parts.append("no verdict from " + ", ".join(judged.missing))
    return f"{judged.outcome.value}: " + ("; ".join(parts) or "not accepted")


def accepted_summary(result: Result) -> bytes:
    """What a dreamer shares of an accepted result: the path, not the whole trace."""
    assert result.accepted is not None
    cand = result.accepted.candidate
    return _json.encode({"task_id": result.task_id, "kind": cand.task.kind, "steps": cand.steps,
                         "text": cand.text, "rounds": result.rounds})


def result_path(task_id: str) -> str:
    return f"{task_path(task_id)}/result"


def record_result(batch: Batch, result: Result) -> None:
    """The result, whole: a redelivered task finds it here and is not dreamed twice."""
    batch.put(result_path(result.task_id), _json.encode(result))
    if result.accepted is not None:
        cpath = candidate_path(result.task_id, result.accepted.candidate.round, result.accepted.candidate.index)
        batch.link(result_path(result.task_id), EdgeKind.DERIVED_FROM, cpath)
    batch.checkpoint(result.task_id, None)  # finished: the checkpoint list holds unfinished work only


_result_decoder = msgspec.json.Decoder(Result)


def decode_result(data: bytes) -> Result:
    return _result_decoder.decode(data)
