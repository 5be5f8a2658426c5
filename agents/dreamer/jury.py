"""Asking a dreamer's critics for their verdicts on one candidate, and combining them."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import msgspec
import nats.errors

from reverie.protocol import (
    Candidate,
    Codec,
    Decision,
    Error,
    JudgedCandidate,
    MissingVerdict,
    ProtocolError,
    Reason,
    Task,
    Verdict,
)
from reverie.runtime import BurstLog, Context, Reply
from reverie.runtime.tracing import span

from ..reasoners import Proposal
from .options import DreamerOptions
from .quorum import decide
from .spans import note_judged

__all__ = ["Jury", "score", "slim_task"]


class Jury:
    """The critics one dreamer waits for: asks them about a candidate (again, when a verdict is
    lost), keeps only verdicts from the critic they name, and decides by the quorum."""

    def __init__(self, ctx: Context, options: DreamerOptions, critics: Sequence[str], log: logging.Logger) -> None:
        self.ctx = ctx
        self.options = options
        self.critics = list(critics)
        self.log = log
        self._burst = BurstLog(log)
        self._replies: Codec[Verdict | Error] = Codec(Verdict | Error, max_bytes=ctx.config.max_message_bytes)

    async def judge(self, cand: Candidate, *, budget_left: float, patience: float | None = None) -> JudgedCandidate:
        """Each request for verdicts waits `patience` (default `verdict_timeout`; a domain whose
        critics run tests asks for more), at most the `budget_left` seconds the task had when
        its round began."""
        with span("judge candidate", attributes={"reverie.candidate.id": cand.id}) as s:
            judged = await self._judge(cand, budget_left=budget_left, patience=patience)
            note_judged(s, judged)
            return judged

    async def _judge(self, cand: Candidate, *, budget_left: float, patience: float | None) -> JudgedCandidate:
        opts = self.options
        timeout = min(opts.verdict_timeout if patience is None else patience, max(budget_left, 0.05))
        subject = self.ctx.bus.subjects.candidate(cand.task.id)
        verdicts: dict[str, Verdict] = {}
        failures: dict[str, MissingVerdict] = {}
        latency: dict[str, float] = {}
        asked = time.monotonic()  # just before the first request goes out: latencies count from it
        for _ in range(max(opts.verdict_attempts, 1)):
            if all(c in verdicts for c in self.critics):
                break
            try:
                # every critic answers a repeat, so wait for all of them: a duplicate from one that
                # answered before must not stand in for the one still missing
                # the wait ends when every missing critic answered; `expect` only caps what a
                # crowd of other responders can make it collect
                missing = [c for c in self.critics if c not in verdicts]
                replies = await self.ctx.bus.request_many(subject, cand, expect=4 * len(self.critics) + 16,
                                                          timeout=timeout, senders=missing)
            except (TimeoutError, nats.errors.Error) as exc:  # reconnecting: ask again
                self.log.warning("asking critics about %s failed: %s", cand.id, exc)
                replies = []
            for answer in replies:
                kept = self._collect(cand, answer, verdicts, failures)
                if kept is not None and answer.at:
                    latency[kept] = round(max(answer.at - asked, 0.0), 6)
        got = tuple(verdicts[c] for c in self.critics if c in verdicts)
        outcome = decide(got, self.critics, opts.quorum, weights=opts.weights, threshold=opts.threshold)
        missing_critics = tuple(c for c in self.critics if c not in verdicts)
        why = tuple(failures.get(c) or MissingVerdict(
            critic=c, code="no_answer", message=f"no verdict within {timeout:g}s in {opts.verdict_attempts} attempt(s)")
            for c in missing_critics)
        # the trace (and checkpoint) names the task once; candidates in it carry only its id and kind
        slim = msgspec.structs.replace(cand, task=slim_task(cand.task))
        return JudgedCandidate(candidate=slim, verdicts=got, outcome=outcome, missing=missing_critics,
                               why_missing=why, latency={c: latency[c] for c in self.critics if c in latency})

    def unusable(self, cand: Candidate, p: Proposal) -> JudgedCandidate:
        """A proposal the reasoner could not make usable (off-schema model output): rejected
        with its reason, so the next round can correct it; no critic is asked."""
        self.ctx.counters["proposals.unusable"] += 1
        verdict = Verdict(candidate_id=cand.id, critic=f"{self.ctx.name}.reasoner", decision=Decision.REJECT,
                          reasons=(Reason(code=p.invalid_code, text=p.invalid),))
        slim = msgspec.structs.replace(cand, task=slim_task(cand.task))
        return JudgedCandidate(candidate=slim, verdicts=(verdict,), outcome=Decision.REJECT)

    def _collect(self, cand: Candidate, answer: Reply, verdicts: dict[str, Verdict],
                 failures: dict[str, MissingVerdict]) -> str | None:
        """Take one answer: the critic whose verdict it is when it is the first one kept from it, else None."""
        try:
            reply = self._replies.decode(answer.data)
        except ProtocolError as exc:
            self.log.warning("undecodable verdict for %s: %s", cand.id, exc)
            return None
        match reply:
            case Error():
                self._failed(cand, answer.sender, reply, failures)
            case Verdict() if reply.candidate_id != cand.id:
                pass
            case Verdict() if reply.critic not in self.critics:  # a custom critic naming another critic, or none
                self.ctx.counters["verdicts.misnamed"] += 1
                self._burst.warning(
                    f"misnamed:{answer.sender}", "dropped a verdict on %s that names critic %r, which this "
                    "dreamer does not wait for (sent by %r; a critic's verdicts must name the agent itself, "
                    "ctx.name); %d such verdicts so far", cand.id, reply.critic, answer.sender or "an unnamed sender",
                    self.ctx.counters["verdicts.misnamed"])
            # the bus names the sender (and on an authenticated bus the server vouches for it);
            # an unnamed reply, from a raw-NATS critic, is taken only where nobody is vouched for
            case Verdict() if answer.sender == reply.critic or (not answer.sender and not self.ctx.bus.authenticated):
                if reply.critic not in verdicts:
                    verdicts[reply.critic] = reply
                    return reply.critic
            case Verdict():
                self.ctx.counters["verdicts.impostor"] += 1
                self._burst.warning(
                    f"impostor:{answer.sender}", "dropped a verdict on %s that claims critic %r but was sent "
                    "by %r (%d such verdicts so far)", cand.id, reply.critic, answer.sender or "an unnamed sender",
                    self.ctx.counters["verdicts.impostor"])
        return None

    def _failed(self, cand: Candidate, sender: str, reply: Error, failures: dict[str, MissingVerdict]) -> None:
        """A critic that answered with an error: why its verdict is missing, its usage summed."""
        critic = sender if sender in self.critics else "(unnamed critic)"
        self._burst.warning(f"judge-error:{critic}:{reply.code}", "critic %s could not judge %s: %s",
                            critic, cand.id, reply.message)
        before = failures.get(critic)
        spent = reply.usage if before is None or before.usage is None else (
            before.usage if reply.usage is None else before.usage + reply.usage)
        failures[critic] = MissingVerdict(critic=critic, code=reply.code, message=reply.message, usage=spent)


def slim_task(task: Task) -> Task:
    """A task as a trace names it: id and kind, no input."""
    return Task(id=task.id, kind=task.kind, input=None, created_at=task.created_at)


def score(j: JudgedCandidate) -> float:
    """A judged candidate's mean verdict score."""
    return sum(v.score for v in j.verdicts) / len(j.verdicts) if j.verdicts else 0.0
