"""How a dream is written into the agent's memory, and read back to resume it.

One round is one atomic batch: the round's candidates and verdicts as memories at
`/tasks/<id>/rounds/<n>/cand/<i>[/verdicts/<critic>]`, typed edges between them (round
derived-from task, round refines the previous round, candidate derived-from round, candidate
rejected-by or supported-by a verdict), rejected branches invalidated (kept for audit,
excluded from recall), their reasons stored as lessons, and the task's checkpoint. A dreamer
killed at any moment resumes from the last committed round.

The round memories also hold the trace a second time: a task whose checkpoint did not read
back (damaged on disk, so the memory layer quarantined it) resumes from `recovered_trace`.
"""

from __future__ import annotations

import enum
import hashlib
import zlib
from collections.abc import Iterable
from typing import Any

import msgspec

from reverie.protocol import (
    Candidate,
    Decision,
    JudgedCandidate,
    Patch,
    Reason,
    Result,
    RoundTrace,
    Task,
    TaskInfo,
    TaskState,
    Verdict,
)
from reverie.runtime.memory import Batch, EdgeKind, Lesson, MemoryStore

__all__ = ["RECENT_SLOTS", "DreamCheckpoint", "DreamStatus", "accepted_summary", "candidate_path", "decode_checkpoint",
           "decode_result", "encode_checkpoint", "lessons_of", "recent_path", "record_result", "record_round",
           "record_task", "recovered_trace", "repairs_of", "result_path", "round_path", "task_info", "task_path"]

_json = msgspec.json.Encoder()


class DreamStatus(enum.StrEnum):
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


def task_info(cp: DreamCheckpoint, agent: str) -> TaskInfo:
    """What `reverie task show` tells of a checkpointed task."""
    state = {DreamStatus.RUNNING: TaskState.RUNNING, DreamStatus.PAUSED: TaskState.PAUSED,
             DreamStatus.DONE: TaskState.DONE}[cp.status]
    cands = [j for r in cp.trace for j in r.candidates]
    return TaskInfo(task_id=cp.task.id, state=state, agent=agent, rounds=len(cp.trace), candidates=len(cands),
                    rejected=sum(1 for j in cands if j.outcome is not Decision.ACCEPT), spent=cp.spent,
                    resumes=cp.resumes)


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
        if judged.outcome is Decision.ACCEPT:
            found = repairs_of(task, judged, feats)
        else:
            batch.invalidate(cpath, _why(judged))
            found = lessons_of(task, judged, feats)
        for lesson in found:
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


def repairs_of(task: Task, judged: JudgedCandidate, features: tuple[str, ...]) -> list[Lesson]:
    """What an accepted patch teaches similar code tasks: how it fixed this one (its rationale
    names the kind of change), under topic `repaired`. Other accepted candidates teach nothing."""
    cand = judged.candidate
    if not isinstance(cand.artifact, Patch) or not cand.rationale:
        return []
    lid = hashlib.sha256(f"{task.id}|repaired|{cand.id}".encode()).hexdigest()[:16]
    return [Lesson(id=lid, topic="repaired", reason=Reason(code="repaired", text=cand.rationale[:500]),
                   features=features, task_id=task.id, author=cand.dreamer)]


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


RECENT_SLOTS = 1024
"""How many of its latest results a dreamer checks against the results stream when it starts."""


def recent_path(task_id: str) -> str:
    """A slot of the ring of recent results (later results overwrite earlier ones)."""
    return f"/recent-results/{zlib.crc32(task_id.encode()) % RECENT_SLOTS:04d}"


def record_result(batch: Batch, result: Result) -> None:
    """The result, whole: a redelivered task finds it here and is not dreamed twice. Its id also
    goes into the ring of recent results, which a restarted dreamer checks against the stream."""
    batch.put(result_path(result.task_id), _json.encode(result))
    batch.put(recent_path(result.task_id), result.task_id.encode())
    if result.accepted is not None:
        cpath = candidate_path(result.task_id, result.accepted.candidate.round, result.accepted.candidate.index)
        batch.link(result_path(result.task_id), EdgeKind.DERIVED_FROM, cpath)
    batch.checkpoint(result.task_id, None)  # finished: the checkpoint list holds unfinished work only


_result_decoder = msgspec.json.Decoder(Result)


def decode_result(data: bytes) -> Result:
    return _result_decoder.decode(data)


class _StoredCandidate(msgspec.Struct, frozen=True):
    """What `record_round` writes at a candidate's path."""

    id: str
    steps: tuple[str, ...]
    text: str
    outcome: Decision
    rationale: str = ""
    missing: tuple[str, ...] = ()


class _StoredRound(msgspec.Struct, frozen=True):
    round: int
    elapsed: float = 0.0


_stored_candidate = msgspec.json.Decoder(_StoredCandidate)
_stored_round = msgspec.json.Decoder(_StoredRound)
_stored_verdict = msgspec.json.Decoder(Verdict)


def recovered_trace(store: MemoryStore, task: Task, dreamer: str) -> list[RoundTrace]:
    """The trace of `task` rebuilt from its round memories (for a task whose checkpoint is
    gone): every round up to the last one that left a readable memory, each with the
    candidates and verdicts that read back, so a resumed dream never proposes again a branch
    they show rejected. A round that accepted a candidate ends it there: the task's result is
    what was lost, and that round is dreamt again. Synchronous: run it on the memory thread."""
    prefix = f"{task_path(task.id)}/rounds/"
    elapsed: dict[int, float] = {}
    candidates: dict[int, dict[int, _StoredCandidate]] = {}
    verdicts: dict[tuple[int, int], list[Verdict]] = {}
    for path, content in store.contents(prefix):
        parts = path[len(prefix):].split("/")
        if not parts[0].isdigit() or (len(parts) > 1 and (parts[1] != "cand" or not parts[2].isdigit())):
            continue
        rnd = int(parts[0])
        try:
            if len(parts) == 1:
                elapsed[rnd] = _stored_round.decode(content).elapsed
            elif len(parts) == 3:
                candidates.setdefault(rnd, {})[int(parts[2])] = _stored_candidate.decode(content)
            elif len(parts) == 5 and parts[3] == "verdicts":
                verdicts.setdefault((rnd, int(parts[2])), []).append(_stored_verdict.decode(content))
        except msgspec.DecodeError:
            continue  # a collapsed dead branch keeps no content
    slim = Task(id=task.id, kind=task.kind, input=None, created_at=task.created_at)
    trace: list[RoundTrace] = []
    for rnd in range(1, max([*elapsed, *candidates], default=0) + 1):
        judged = tuple(
            JudgedCandidate(candidate=Candidate(id=c.id, task=slim, round=rnd, index=i, steps=c.steps, text=c.text,
                                                rationale=c.rationale, dreamer=dreamer),
                            verdicts=tuple(verdicts.get((rnd, i), ())), outcome=c.outcome, missing=c.missing)
            for i, c in sorted(candidates.get(rnd, {}).items()))
        if any(j.outcome is Decision.ACCEPT for j in judged):
            break
        trace.append(RoundTrace(round=rnd, candidates=judged, elapsed=elapsed.get(rnd, 0.0)))
    return trace
