"""The rows of the web view's task list, made from stored results (`bus.history` reads them)."""

from __future__ import annotations

import msgspec

from reverie.protocol import Decision, Result

from ..bus.history import MAX_RECENT as MAX_TASKS
from ..bus.history import recent_results

__all__ = ["MAX_TASKS", "TaskRow", "recent_results", "task_kind", "task_row"]


class TaskRow(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the task list."""

    task_id: str
    kind: str
    status: str
    agent: str
    rounds: int
    candidates: int
    rejected: int
    flagged: int
    elapsed: float
    finished_at: float
    seq: int = 0
    """The result's sequence in the results stream."""


def task_kind(result: Result) -> str:
    """The task's kind, from a candidate that carries the task ("" when no candidate was made)."""
    judged = result.accepted or next((j for r in result.trace for j in r.candidates), None)
    return judged.candidate.task.kind if judged is not None else ""


def task_row(result: Result, seq: int = 0) -> TaskRow:
    outcomes = [j.outcome for r in result.trace for j in r.candidates]
    return TaskRow(task_id=result.task_id, kind=task_kind(result), status=result.status.value, agent=result.agent,
                   rounds=result.rounds, candidates=len(outcomes),
                   rejected=outcomes.count(Decision.REJECT), flagged=outcomes.count(Decision.FLAG),
                   elapsed=result.elapsed, finished_at=result.finished_at, seq=seq)
