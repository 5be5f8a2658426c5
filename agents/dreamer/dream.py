"""One task's dream: its state, and the rounds, checkpoints and commits that move it on.

Every round is committed to the agent's memory together with the task's checkpoint, so a
dreamer killed at any moment resumes at the round it reached and never re-proposes a rejected
path. The checkpoint and record encodings are in `records` (they are on disk).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from reverie.protocol import (
    Budget,
    Candidate,
    Decision,
    JudgedCandidate,
    Reason,
    Result,
    ResultStatus,
    ReverieError,
    RoundTrace,
    Task,
    TaskProgress,
    TaskState,
    Usage,
    new_id,
)
from reverie.runtime import Context, TaskControl
from reverie.runtime.gossip import LessonShare, MemoryShare, Payload
from reverie.runtime.memory import Memory
from reverie.runtime.tracing import span

from ..domains import Domain
from ..reasoners import Proposal, Proposals, Reasoner, RoundState
from .jury import Jury, score
from .options import DreamerOptions
from .records import (
    DreamCheckpoint,
    DreamStatus,
    accepted_summary,
    encode_checkpoint,
    record_result,
    record_round,
    record_task,
    task_info,
)
from .spans import note_round

__all__ = ["QUARANTINED", "DreamKit", "TaskDream", "usage_by_agent"]

QUARANTINED = "[quarantined: flagged harmful by a critic]"


@dataclass(frozen=True)
class DreamKit:
    """What every task's dream of one dreamer shares."""

    ctx: Context
    options: DreamerOptions
    memory: Memory
    reasoner: Reasoner
    control: TaskControl
    jury: Jury
    log: logging.Logger


class TaskDream:
    """One task's dream, fresh or resumed from its checkpoint `cp`."""

    def __init__(self, kit: DreamKit, task: Task, cp: DreamCheckpoint | None, domain: Domain | None = None) -> None:
        opts = kit.options
        self.kit = kit
        self.task = task
        self.domain = domain
        self.resumed = cp is not None
        self.budget = task.budget or Budget(max_rounds=opts.max_rounds, max_seconds=opts.max_seconds,
                                            candidates_per_round=opts.candidates_per_round)
        self.trace: list[RoundTrace] = list(cp.trace) if cp else []
        self.answers: dict[str, Any] = dict(cp.answers) if cp else {}
        self.spent = cp.spent if cp else 0.0
        """Seconds spent on the task before this run began."""
        self.resumes = cp.resumes + 1 if cp else 0
        self.pending = cp.pending if cp else None
        self.features: frozenset[str] = frozenset()
        self.recalled = 0
        """How many lessons of earlier tasks the reasoner was given."""
        self.began: float | None = None

    def elapsed(self) -> float:
        """Seconds spent on the task, this run included."""
        return self.spent + (time.monotonic() - self.began if self.began is not None else 0.0)

    async def run(self, features: frozenset[str], lessons: list[Reason]) -> Result | None:
        """Dream rounds until one is accepted or the budget is spent; None when paused."""
        kit, task, budget = self.kit, self.task, self.budget
        self.features = features
        self.recalled = len(lessons)
        if self.resumed:
            kit.log.info("resuming task %s at round %d", task.id, len(self.trace) + 1)
            await self.announce(TaskState.RUNNING)
        batch = kit.memory.store.batch()
        if not self.resumed:
            record_task(batch, task)
        # claim it: a restarted replica resumes the checkpoints of its dead predecessor at once
        batch.checkpoint(task.id, encode_checkpoint(self.checkpoint(DreamStatus.RUNNING)))
        await kit.memory.commit(batch)
        self.began = time.monotonic()
        why = f"no candidate accepted in {budget.max_rounds} rounds"
        for rnd in range(len(self.trace) + 1, budget.max_rounds + 1):
            left = budget.max_seconds - self.elapsed()
            if left <= 0:
                why = f"time budget of {budget.max_seconds:g}s spent after {rnd - 1} rounds"
                break
            with span("dream round", attributes={"reverie.task.id": task.id, "reverie.round": rnd}) as s:
                try:
                    out = await asyncio.wait_for(self._propose(rnd, lessons, left), left)
                except TimeoutError:
                    why = f"time budget of {budget.max_seconds:g}s spent while reasoning in round {rnd}"
                    break
                except ReverieError as exc:
                    return await self.finish(ResultStatus.FAILED, reason=str(exc))
                self.pending = None
                proposals, usage, stop = (out.proposals, out.usage, out.stop) if isinstance(out, Proposals) \
                    else (out, None, "")
                if not proposals:
                    why = f"the reasoner has no untried candidate left after {rnd - 1} rounds"
                    break
                judged = await self._judge_round(rnd, proposals, usage, left)
                note_round(s, judged, usage)
                await self._progress()
            accepted = [j for j in judged if j.outcome is Decision.ACCEPT]
            if accepted:
                best = max(accepted, key=score)
                return await self.finish(ResultStatus.ACCEPTED, accepted=best, answer=self._answer(best))
            if await kit.control.cancel_requested(task.id):
                await self.commit_round(DreamStatus.RUNNING)
                return await self.cancel()
            paused = await kit.control.pause_requested(task.id)
            await self.commit_round(DreamStatus.PAUSED if paused else DreamStatus.RUNNING)
            if stop:  # the reasoner will not go on (a model's refusal): asking again would repeat it
                return await self.finish(ResultStatus.FAILED, reason=stop)
            if paused:
                await kit.control.park(task)
                kit.log.info("paused task %s after round %d", task.id, rnd)
                await self.announce(TaskState.PAUSED)
                return None  # the queue message is acked; `resume` queues the task again
        return await self.finish(ResultStatus.EXHAUSTED, reason=why)

    async def _progress(self) -> None:
        """The round just judged, for whoever watches the task (`submit --wait`). Best effort: a
        dropped event costs a watcher a line, never the task."""
        bus = self.kit.ctx.bus
        event = TaskProgress(task_id=self.task.id, agent=self.kit.ctx.name, round=_quarantine(self.trace[-1]),
                             max_rounds=self.budget.max_rounds, recalled=self.recalled)
        try:
            await bus.publish(bus.subjects.rel(f"events.task.{self.task.id}"), event)
        except Exception as exc:  # a reconnecting bus: the round is in memory and the trace
            self.kit.log.debug("progress of %s not published: %s", self.task.id, exc)

    async def cancel(self) -> Result:
        """End the task `cancelled` (an operator asked), keeping the rounds it dreamt."""
        self.kit.log.info("cancelled task %s after %d round(s)", self.task.id, len(self.trace))
        result = await self.finish(ResultStatus.CANCELLED, reason=f"cancelled by an operator after "
                                                                  f"{len(self.trace)} round(s)")
        await self.kit.control.forget_cancel(self.task.id)
        return result

    def _answer(self, best: JudgedCandidate) -> Any:
        proposed = self.answers[best.candidate.id]
        return proposed if self.domain is None else self.domain.answer(self.task, best.candidate, proposed)

    async def _propose(self, rnd: int, lessons: list[Reason], left: float) -> list[Proposal] | Proposals:
        reasoner, k = self.kit.reasoner, self.budget.candidates_per_round
        if not reasoner.stateful:
            return await reasoner.propose(self.task, rnd, k, self.trace, lessons)
        # a reasoner with work in flight across a restart (a Message Batch): its state is checkpointed
        pending = self.pending if self.pending and self.pending.get("round") == rnd else None
        state = RoundState(pending, self._save_pending, deadline=time.monotonic() + left)
        return await reasoner.propose(self.task, rnd, k, self.trace, lessons, state=state)

    async def _save_pending(self, pending: dict[str, Any] | None) -> None:
        batch = self.kit.memory.store.batch()
        batch.checkpoint(self.task.id, encode_checkpoint(self.checkpoint(DreamStatus.RUNNING, pending=pending)))
        await self.kit.memory.commit(batch)

    async def _judge_round(self, rnd: int, proposals: list[Proposal], usage: Usage | None,
                           left: float) -> list[JudgedCandidate]:
        """Have the critics judge one round's proposals; the round joins the trace."""
        jury, domain = self.kit.jury, self.domain
        round_began = time.monotonic()
        candidates = [self._candidate(rnd, i, p) for i, p in enumerate(proposals)]
        if domain is not None:  # a candidate its domain cannot take (a plan's steps for a code task) is unusable
            proposals = [_misfit(p, domain.check(c)) for c, p in zip(candidates, proposals, strict=True)]
        self.answers.update({c.id: p.answer for c, p in zip(candidates, proposals, strict=True) if not p.invalid})
        patience = None if domain is None else domain.patience(self.task, self.kit.options.verdict_timeout)

        async def judged(c: Candidate, p: Proposal) -> JudgedCandidate:
            return jury.unusable(c, p) if p.invalid else await jury.judge(c, budget_left=left, patience=patience)

        out = list(await asyncio.gather(*(judged(c, p) for c, p in zip(candidates, proposals, strict=True))))
        self.trace.append(RoundTrace(round=rnd, candidates=tuple(out), elapsed=time.monotonic() - round_began,
                                     usage=usage))
        return out

    def _candidate(self, rnd: int, index: int, p: Proposal) -> Candidate:
        return Candidate(id=new_id(), task=self.task, round=rnd, index=index, steps=p.steps,
                         text=p.text, rationale=p.rationale, dreamer=self.kit.ctx.name, artifact=p.artifact)

    def checkpoint(self, status: DreamStatus, *, pending: dict[str, Any] | None = None) -> DreamCheckpoint:
        ctx = self.kit.ctx
        return DreamCheckpoint(task=self.task, status=status, trace=tuple(self.trace), answers=self.answers,
                               spent=self.elapsed(), resumes=self.resumes,
                               replica=ctx.replica, owner_pid=os.getpid(), pending=pending)

    async def commit_round(self, status: DreamStatus, result: Result | None = None) -> None:
        """The last round, what it taught, and the checkpoint (or the result) in one commit."""
        kit = self.kit
        batch = kit.memory.store.batch()
        learned = record_round(batch, self.task, self.trace[-1], self.features)
        if result is not None:
            record_result(batch, result)  # also drops the checkpoint
        else:
            batch.checkpoint(self.task.id, encode_checkpoint(self.checkpoint(status)))
        gossip = kit.ctx.gossip
        staged = None
        if gossip is not None:  # what this round taught, for peers: staged in the round's own commit
            shares: list[Payload] = [LessonShare(lesson) for lesson in learned]
            if result is not None and result.accepted is not None:
                shares.append(MemoryShare(f"/accepted/{self.task.id}", accepted_summary(result)))
            staged = gossip.stage(batch, shares)
        await kit.memory.commit(batch)
        if gossip is not None and staged:
            gossip.release(staged)

    async def finish(self, status: ResultStatus, *, accepted: JudgedCandidate | None = None, answer: Any = None,
                     reason: str = "") -> Result:
        result = self.result(status, accepted=accepted, answer=answer, reason=reason)
        if status is ResultStatus.ACCEPTED:  # the accepting round is not committed yet
            await self.commit_round(DreamStatus.DONE, result)
        else:  # every round so far was committed when it ended
            batch = self.kit.memory.store.batch()
            record_result(batch, result)
            await self.kit.memory.commit(batch)
        return result

    def result(self, status: ResultStatus, *, accepted: JudgedCandidate | None = None, answer: Any = None,
               reason: str = "") -> Result:
        name, trace = self.kit.ctx.name, self.trace
        by_agent = usage_by_agent(name, trace)
        rejected = [j for r in trace for j in r.candidates if j.outcome is Decision.REJECT]
        best = tuple(sorted(rejected, key=score, reverse=True)[: self.kit.options.keep_best])
        if status is ResultStatus.EXHAUSTED and best:
            reason += "; best rejected: " + "; ".join(f"{_summary(j.candidate)} ({_reasons(j)})" for j in best[:1])
        return Result(task_id=self.task.id, status=status, agent=name, answer=answer,
                      accepted=accepted, rounds=len(trace), trace=tuple(_quarantine(r) for r in trace),
                      best_rejected=best if status is not ResultStatus.ACCEPTED else (),
                      reason=reason, elapsed=self.elapsed(), resumes=self.resumes, usage=_total(by_agent),
                      usage_by_agent=by_agent, recalled=self.recalled)

    async def announce(self, state: TaskState) -> None:
        """Publish the task's state on its events subject."""
        bus = self.kit.ctx.bus
        cp = DreamCheckpoint(task=self.task, status=DreamStatus.RUNNING, trace=tuple(self.trace), spent=self.spent,
                             resumes=self.resumes, replica=self.kit.ctx.replica, owner_pid=os.getpid())
        info = msgspec.structs.replace(task_info(cp, self.kit.ctx.name), state=state)
        await bus.publish(bus.subjects.rel(f"events.task.{self.task.id}"), info)


def usage_by_agent(dreamer: str, trace: list[RoundTrace]) -> dict[str, Usage]:
    """Every model call of a task, by the agent that made it: the reasoner's rounds under the
    dreamer's name, each critic's verdicts (and failed attempts) under the critic's."""
    out: dict[str, Usage] = {}

    def add(agent: str, usage: Usage | None) -> None:
        if usage is not None:
            out[agent] = out[agent] + usage if agent in out else usage

    for r in trace:
        add(dreamer, r.usage)
        for j in r.candidates:
            for v in j.verdicts:
                add(v.critic, v.usage)
            for m in j.why_missing:
                add(m.critic, m.usage)
    return out


def _total(by_agent: dict[str, Usage]) -> Usage | None:
    used = list(by_agent.values())
    return sum(used[1:], used[0]) if used else None


def _misfit(p: Proposal, why: str) -> Proposal:
    return msgspec.structs.replace(p, invalid=why, invalid_code="off_schema") if why and not p.invalid else p


def _summary(cand: Candidate) -> str:
    """A candidate in a few words: a plan's path, else the first line of its rationale or text."""
    if cand.steps:
        return " -> ".join(cand.steps)
    lines = (cand.rationale or cand.text).strip().splitlines()
    return lines[0][:200] if lines else f"candidate {cand.index + 1} of round {cand.round}"


def _reasons(j: JudgedCandidate) -> str:
    found = [f"{v.critic}: {r.text}" for v in j.verdicts for r in v.reasons]
    found += [f"{m.critic} gave no verdict ({m.code}: {m.message})" for m in j.why_missing]
    return "; ".join(found) or "no reasons given"


def _quarantine(r: RoundTrace) -> RoundTrace:
    """A flagged candidate's path never leaves the dreamer, only its verdicts do."""
    if all(j.outcome is not Decision.FLAG for j in r.candidates):
        return r
    return msgspec.structs.replace(r, candidates=tuple(
        msgspec.structs.replace(j, candidate=msgspec.structs.replace(j.candidate, steps=(), text=QUARANTINED,
                                                                     rationale="", artifact=None))
        if j.outcome is Decision.FLAG else j for j in r.candidates))
