"""The dreamer: explores candidate paths for a task, has every critic judge them, refines.

See DESIGN.md, "The dream loop". Reasoning runs in the task's own coroutine, so the agent's
message loop keeps serving while many tasks dream at once (bounded by `concurrency`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from reverie.protocol import (
    Budget,
    Candidate,
    Codec,
    Decision,
    Error,
    JudgedCandidate,
    ProtocolError,
    ReverieError,
    Result,
    ResultStatus,
    RoundTrace,
    Task,
    Verdict,
    new_id,
)
from reverie.runtime import Agent, handler
from reverie.runtime.registry import resolve_agent_class

from .quorum import Quorum, decide
from .reasoners import Proposal, Reasoner, make_reasoner

QUARANTINED = "[quarantined: flagged harmful by a critic]"


class DreamerOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reasoner: str = "offline"
    """`offline` (deterministic, no network) or `module:Class`."""
    reasoner_options: dict[str, Any] = {}
    candidates_per_round: int = 3
    max_rounds: int = 5
    max_seconds: float = 120.0
    verdict_timeout: float = 5.0
    """How long a round waits for verdicts; a critic that has not answered counts as not accepting."""
    quorum: Quorum = Quorum.ALL
    weights: dict[str, float] = {}
    threshold: float = 0.5
    critics: list[str] | None = None
    """Critic agents to wait for; default: every agent in the config whose role is `critic`."""
    keep_best: int = 3


class Dreamer(Agent):
    role = "dreamer"
    Options = DreamerOptions

    async def on_start(self) -> None:
        opts: DreamerOptions = self.options
        self.reasoner: Reasoner = make_reasoner(opts.reasoner, opts.reasoner_options)
        if opts.critics is not None:
            self.critics = list(opts.critics)
        else:
            self.critics = [a.name for a in self.ctx.config.agents
                            if resolve_agent_class(a.kind).role == "critic"]
        self._verdicts: Codec[Verdict | Error] = Codec(Verdict | Error,
                                                        max_bytes=self.ctx.config.max_message_bytes)
        if not self.critics:
            self.log.warning("no critic agents configured: every candidate will be accepted")

    @handler("task.plan", concurrency=64)
    async def dream(self, task: Task) -> Result:
        opts: DreamerOptions = self.options
        budget = task.budget or Budget(max_rounds=opts.max_rounds, max_seconds=opts.max_seconds,
                                       candidates_per_round=opts.candidates_per_round)
        began = time.monotonic()
        trace: list[RoundTrace] = []
        answers: dict[str, Any] = {}
        why = f"no candidate accepted in {budget.max_rounds} rounds"
        for rnd in range(1, budget.max_rounds + 1):
            left = budget.max_seconds - (time.monotonic() - began)
            if left <= 0:
                why = f"time budget of {budget.max_seconds:g}s spent after {rnd - 1} rounds"
                break
            try:
                proposals = await asyncio.wait_for(
                    self.reasoner.propose(task, rnd, budget.candidates_per_round, trace), left)
            except asyncio.TimeoutError:
                why = f"time budget of {budget.max_seconds:g}s spent while reasoning in round {rnd}"
                break
            except ReverieError as exc:
                return self._result(task, ResultStatus.FAILED, trace, began, reason=str(exc))
            if not proposals:
                why = f"the reasoner has no untried candidate left after {rnd - 1} rounds"
                break
            round_began = time.monotonic()
            candidates = [self._candidate(task, rnd, i, p) for i, p in enumerate(proposals)]
            answers.update({c.id: p.answer for c, p in zip(candidates, proposals)})
            timeout = min(self.options.verdict_timeout, max(left, 0.05))
            judged = await asyncio.gather(*(self._judge(c, timeout) for c in candidates))
            trace.append(RoundTrace(round=rnd, candidates=tuple(judged),
                                    elapsed=time.monotonic() - round_began))
            accepted = [j for j in judged if j.outcome is Decision.ACCEPT]
            if accepted:
                best = max(accepted, key=_score)
                return self._result(task, ResultStatus.ACCEPTED, trace, began, accepted=best,
                                    answer=answers[best.candidate.id])
        return self._result(task, ResultStatus.EXHAUSTED, trace, began, reason=why)

    def _candidate(self, task: Task, rnd: int, index: int, p: Proposal) -> Candidate:
        return Candidate(id=new_id(), task=task, round=rnd, index=index, steps=p.steps,
                         text=p.text, rationale=p.rationale, dreamer=self.ctx.name)

    async def _judge(self, cand: Candidate, timeout: float) -> JudgedCandidate:
        opts: DreamerOptions = self.options
        subject = self.ctx.bus.subjects.candidate(cand.task.id)
        replies = await self.ctx.bus.request_many(subject, cand, expect=len(self.critics), timeout=timeout)
        verdicts: dict[str, Verdict] = {}
        for data in replies:
            try:
                reply = self._verdicts.decode(data)
            except ProtocolError as exc:
                self.log.warning("undecodable verdict for %s: %s", cand.id, exc)
                continue
            if isinstance(reply, Error):
                self.log.warning("a critic could not judge %s: %s", cand.id, reply.message)
            elif reply.candidate_id == cand.id and reply.critic in self.critics:
                verdicts.setdefault(reply.critic, reply)
        got = tuple(verdicts[c] for c in self.critics if c in verdicts)
        outcome = decide(got, self.critics, opts.quorum, weights=opts.weights, threshold=opts.threshold)
        missing = tuple(c for c in self.critics if c not in verdicts)
        return JudgedCandidate(candidate=cand, verdicts=got, outcome=outcome, missing=missing)

    def _result(self, task: Task, status: ResultStatus, trace: list[RoundTrace], began: float, *,
                accepted: JudgedCandidate | None = None, answer: Any = None, reason: str = "") -> Result:
        rejected = [j for r in trace for j in r.candidates if j.outcome is Decision.REJECT]
        best = tuple(sorted(rejected, key=_score, reverse=True)[: self.options.keep_best])
        if status is ResultStatus.EXHAUSTED and best:
            reason += "; best rejected: " + "; ".join(
                f"{' -> '.join(j.candidate.steps)} ({_reasons(j)})" for j in best[:1])
        return Result(task_id=task.id, status=status, agent=self.ctx.name, answer=answer,
                      accepted=_slim(accepted) if accepted else None, rounds=len(trace),
                      trace=tuple(_for_result(r) for r in trace),
                      best_rejected=tuple(_slim(j) for j in best) if status is not ResultStatus.ACCEPTED else (),
                      reason=reason, elapsed=time.monotonic() - began)


def _score(j: JudgedCandidate) -> float:
    return sum(v.score for v in j.verdicts) / len(j.verdicts) if j.verdicts else 0.0


def _reasons(j: JudgedCandidate) -> str:
    return "; ".join(f"{v.critic}: {r.text}" for v in j.verdicts for r in v.reasons) or "no reasons given"


def _slim(j: JudgedCandidate) -> JudgedCandidate:
    """The result names the task once; candidates in it carry the task's id and kind only.

    Quarantine: a flagged candidate's path never leaves the dreamer, only its verdicts do.
    """
    c = j.candidate
    task = Task(id=c.task.id, kind=c.task.kind, input=None, created_at=c.task.created_at)
    if j.outcome is Decision.FLAG:
        c = msgspec.structs.replace(c, task=task, steps=(), text=QUARANTINED, rationale="")
    else:
        c = msgspec.structs.replace(c, task=task)
    return msgspec.structs.replace(j, candidate=c)


def _for_result(r: RoundTrace) -> RoundTrace:
    return msgspec.structs.replace(r, candidates=tuple(_slim(j) for j in r.candidates))
