"""The dreamer: explores candidate paths for a task, has every critic judge them, refines.

See DESIGN.md, "The dream loop". Reasoning runs in the task's own coroutine, so the agent's
message loop keeps serving while many tasks dream at once (bounded by `concurrency`). Every
round is committed to the agent's memory together with the task's checkpoint, so a dreamer
killed at any moment resumes at the round it reached and never re-proposes a rejected path.

Damaged memory (a value that no longer opens) never stops the dreamer: the memory layer
quarantines it and it reads as absent. A task whose checkpoint is lost that way resumes from
the rounds its memory still holds; a lost result is answered from the results stream, or the
task is dreamt again; a lost lesson is simply not recalled.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
from typing import Annotated, Any, Literal

import msgspec
import nats.errors

from reverie.protocol import (
    Budget,
    Candidate,
    Codec,
    Decision,
    Error,
    InvalidTaskId,
    JudgedCandidate,
    MissingVerdict,
    ProtocolError,
    Reason,
    Result,
    ResultStatus,
    ReverieError,
    RoundTrace,
    Task,
    TaskInfo,
    TaskQuery,
    TaskState,
    Usage,
    Verdict,
    check_task_id,
    new_id,
)
from reverie.runtime import Agent, handler
from reverie.runtime.bus.bus import Reply
from reverie.runtime.bus.taskctl import TaskControl
from reverie.runtime.gossip.wire import LessonShare, MemoryShare, Payload
from reverie.runtime.logs import BurstLog
from reverie.runtime.memory import MemoryStore
from reverie.runtime.memory import dreams as consolidation
from reverie.runtime.process import pid_alive

from ..reasoners import (
    Proposal,
    Proposals,
    Reasoner,
    ReasonerConfigError,
    RoundState,
    check_reasoner,
    make_reasoner,
)
from .quorum import Quorum, decide
from .records import (
    DreamCheckpoint,
    DreamStatus,
    accepted_summary,
    decode_checkpoint,
    decode_result,
    encode_checkpoint,
    record_result,
    record_round,
    record_task,
    recovered_trace,
    result_path,
    task_path,
)

QUARANTINED = "[quarantined: flagged harmful by a critic]"
DREAM_CONCURRENCY = 64
"""Tasks one dreamer works on at once, unless the config's `concurrency` says otherwise."""


class DreamerOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reasoner: str = "offline"
    """`offline` (deterministic, no network), `anthropic` (Claude) or `module:Class`."""
    reasoner_options: dict[str, Any] = {}
    candidates_per_round: int = 3
    max_rounds: int = 5
    max_seconds: float = 120.0
    verdict_timeout: float = 5.0
    """How long one request for verdicts waits."""
    verdict_attempts: int = 2
    """Requests per candidate before a critic that has not answered counts as not accepting: a
    verdict lost to a NATS reconnect must not burn a good candidate."""
    quorum: Quorum = Quorum.ALL
    weights: dict[str, float] = {}
    threshold: float = 0.5
    critics: list[str] | None = None
    """Critic agents to wait for; default: every agent in the config whose role is `critic`."""
    keep_best: int = 3
    recall_limit: int = 20
    """How many lessons from earlier tasks the reasoner gets."""
    keep_dead_branches: int = 10_000
    """Size budget: rejected branches beyond the newest this many are collapsed to their lessons."""
    consolidate_every: float = 0.0
    """Seconds between in-place consolidation dreams over this agent's memory; 0 = never."""
    consolidator: Literal["offline", "claude"] = "offline"
    """What plans those dreams: deterministic duplicate merging, or Claude (`consolidator_options`)."""
    consolidator_options: dict[str, Any] = {}
    """`ClaudeOptions` for `consolidator = "claude"`."""
    consolidation_instructions: Annotated[str, msgspec.Meta(max_length=consolidation.MAX_INSTRUCTIONS)] = ""


class Dreamer(Agent):
    role = "dreamer"
    Options = DreamerOptions

    @classmethod
    def check_options(cls, options: DreamerOptions) -> None:
        check_reasoner(options.reasoner, options.reasoner_options)
        if options.consolidator == "claude":
            try:
                check_reasoner("anthropic", options.consolidator_options)
            except ReasonerConfigError as exc:
                field = exc.field.replace(".reasoner_options.", ".consolidator_options.", 1)
                raise ReasonerConfigError(f"{field[1:]}: {exc.detail}" if field else str(exc), field=field,
                                          detail=exc.detail) from None

    async def on_start(self) -> None:
        opts: DreamerOptions = self.options
        self.reasoner: Reasoner = make_reasoner(opts.reasoner, opts.reasoner_options)
        # a reasoner with work in flight across a restart (a Message Batch) takes `state=`
        self._stateful = "state" in inspect.signature(self.reasoner.propose).parameters
        if opts.critics is not None:
            self.critics = list(opts.critics)
        else:
            self.critics = self.ctx.peers("critic")
        self._verdicts: Codec[Verdict | Error] = Codec(Verdict | Error,
                                                        max_bytes=self.ctx.config.max_message_bytes)
        self._burst = BurstLog(self.log)
        if not self.critics:
            self.log.warning("no critic agents configured: every candidate will be accepted")
        self.memory = await self.ctx.memory()
        attach = getattr(self.reasoner, "attach_memory", None)
        if attach is not None:  # a reasoner that reads (and writes notes into) the agent's memory
            attach(self.memory)
        attach_rules = getattr(self.reasoner, "attach_rules", None)
        if attach_rules is not None:  # a reasoner that aims at the LLM critics' constitution
            attach_rules(self._critics_rules())
        self.control = await TaskControl.open(self.ctx.bus)
        self._finished = 0
        self._active: dict[str, asyncio.Future[None]] = {}
        self._storing: dict[str, asyncio.Future[None]] = {}  # resumed orphans, until their result is stored
        self._orphans: set[asyncio.Task[None]] = set()
        await self._resume_orphans()
        self._orphans.add(asyncio.create_task(self._republish_recent(), name="republish"))
        if self.options.consolidate_every > 0:
            self._orphans.add(asyncio.create_task(self._consolidate_periodically(), name="consolidation"))

    async def _consolidate_periodically(self) -> None:
        every = self.options.consolidate_every
        while True:
            await asyncio.sleep(every)
            try:
                record = await self.memory.run(consolidation.dream, self.memory.store, in_place=True,
                                               keep_dead=self.options.keep_dead_branches,
                                               instructions=self.options.consolidation_instructions,
                                               consolidator=self._consolidator)
            except Exception as exc:  # noqa: BLE001 - the CLI's dream holds the lock, Claude is down: next time
                self.log.warning("scheduled consolidation skipped: %s", exc)
                continue
            c = record.changes
            self.log.info("consolidation dream %s: merged %d duplicate lessons, collapsed %d dead branches",
                          record.id, c.lessons_merged, c.branches_dropped)

    def _critics_rules(self) -> list[str]:
        """The constitutions of the `llm-critic` agents among this dreamer's critics."""
        rules: list[str] = []
        for spec in self.ctx.config.agents:
            if spec.name in self.critics and spec.kind == "llm-critic":
                rules += [str(r) for r in spec.options.get("constitution", [])]
        return list(dict.fromkeys(rules))

    @functools.cached_property
    def _consolidator(self) -> consolidation.Consolidator | None:
        """Built once: one HTTP client for every scheduled dream of this agent."""
        if self.options.consolidator != "claude":
            return None
        from ..claude.client import ClaudeOptions
        from ..claude.consolidator import ClaudeConsolidator

        return ClaudeConsolidator(msgspec.convert(self.options.consolidator_options, ClaudeOptions))

    async def on_stop(self) -> None:
        for task in self._orphans:
            task.cancel()
        await asyncio.gather(*self._orphans, return_exceptions=True)
        close = getattr(self.reasoner, "close", None)
        if close is not None:
            await close()

    # ------------------------------------------------------------------ the dream loop

    @handler("task.plan", concurrency=DREAM_CONCURRENCY)
    async def dream(self, task: Task) -> Result | None:
        storing = self._storing.get(task.id)
        if storing is not None:  # resumed here after a restart: that run stores its own result
            await asyncio.shield(storing)
        running = self._active.get(task.id)
        if running is not None:
            await asyncio.shield(running)  # being dreamt here already: that run's result is in memory
        done, cp, known = await self.memory.run(_lookup, self.memory.store, task.id)  # one trip to the memory thread
        if (running or storing) is not None and done is None:
            return None  # that run paused it: `resume` queues it again
        if done is not None:
            # a redelivery after the task finished: publish nothing twice
            return None if await self.ctx.bus.get_result(task.id) else done
        if cp is None and known:
            # dreamt here before, yet neither its checkpoint nor its result reads back: damaged
            # memory, quarantined by the memory layer
            stored = await self._stored_result(task.id)
            if stored is not None:  # finished: answered from the results stream; remember it again
                batch = self.memory.store.batch()
                record_result(batch, stored)
                await self.memory.commit(batch)
                return None
            cp = await self._recovered(task)
        return await self._guarded(task, cp)

    async def _stored_result(self, task_id: str) -> Result | None:
        try:
            return await self.ctx.bus.get_result(task_id)
        except (nats.errors.Error, asyncio.TimeoutError, ProtocolError) as exc:
            self.log.warning("could not look for a stored result of %s: %s", task_id, exc)
            return None

    async def _recovered(self, task: Task) -> DreamCheckpoint:
        """The state of a task whose checkpoint was lost, rebuilt from its round memories."""
        trace = await self.memory.run(recovered_trace, self.memory.store, task, self.ctx.name)
        self.ctx.counters["tasks.recovered"] += 1
        self.log.warning("task %s: neither its checkpoint nor its result reads back (damaged memory is "
                         "quarantined); dreaming on from the %d round(s) its memory still holds", task.id, len(trace))
        return DreamCheckpoint(task=task, status=DreamStatus.RUNNING, trace=tuple(trace),
                               spent=sum(r.elapsed for r in trace), replica=self.ctx.replica, owner_pid=os.getpid())

    async def _guarded(self, task: Task, cp: DreamCheckpoint | None) -> Result | None:
        """One dream per task per process at a time."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._active[task.id] = future
        try:
            try:
                features = self._features(task)
                lessons = await self.memory.recall(features, limit=self.options.recall_limit) if features else []
            except ReverieError as exc:
                return self._result(task, ResultStatus.FAILED, [], 0.0, reason=str(exc))
            return await self._dream(task, cp, features, [lesson.reason for lesson in lessons])
        finally:
            del self._active[task.id]
            future.set_result(None)

    async def _resume_orphans(self) -> None:
        """Resume, right away, the tasks a dead predecessor of this replica was dreaming: their
        queue messages come back only after JetStream's ack_wait, the checkpoints are here now."""
        me = os.getpid()
        spec = next((a for a in self.ctx.config.agents if a.name == self.ctx.name), None)
        slots = asyncio.Semaphore((spec.concurrency if spec is not None else None) or DREAM_CONCURRENCY)
        loop = asyncio.get_running_loop()
        for task_id in await self.memory.checkpoints():
            cp = await self.memory.checkpoint(task_id, decode_checkpoint)
            if cp is None:  # damaged (quarantined): its queue message comes back to `dream`
                continue
            if (cp.status is DreamStatus.RUNNING and cp.replica == self.ctx.replica and cp.owner_pid != me
                    and not pid_alive(cp.owner_pid) and task_id not in self._active):
                self._storing[task_id] = loop.create_future()
                self._orphans.add(asyncio.create_task(self._finish_orphan(cp, slots), name=f"resume:{task_id}"))

    async def _republish_recent(self) -> None:
        """Store again the recent results of this dreamer that the results stream lacks (lost to
        a full disk, a purge, a server that died before its fsync): their task messages were
        acked, so nothing else would ever bring them back. Results older than the stream keeps
        any result are left to age out."""
        keep = self.ctx.config.streams.results.max_age
        republished = 0
        for _, raw in await self.memory.contents("/recent-results/"):
            task_id = raw.decode(errors="replace")
            try:
                check_task_id(task_id)
                if await self.ctx.bus.get_result(task_id) is not None:
                    continue
                result = await self.memory.load(result_path(task_id), decode_result)
                if result is None or time.time() - result.finished_at > keep:
                    continue
                await self.ctx.bus.store_result(result)
            except (ReverieError, nats.errors.Error, asyncio.TimeoutError) as exc:
                self.log.warning("checking the stored result of %s: %s", task_id, exc)
                continue
            republished += 1
            self.ctx.counters["results.republished"] += 1
        if republished:
            self.log.warning("stored again %d recent result(s) the results stream had lost", republished)

    async def _finish_orphan(self, cp: DreamCheckpoint, slots: asyncio.Semaphore) -> None:
        """Dream a dead predecessor's task on and store its result; at most the dreamer's
        `concurrency` of them at once (a restart may find hundreds)."""
        try:
            async with slots:
                self.ctx.counters["tasks.resumed"] += 1
                result = await self._guarded(cp.task, cp)
                while result is not None:  # the queue message is acked when it is redelivered and finds it
                    try:
                        await self.ctx.bus.store_result(result)
                        return
                    except (nats.errors.Error, asyncio.TimeoutError) as exc:
                        self.log.warning("storing the result of resumed task %s: %s; retrying", cp.task.id, exc)
                        await asyncio.sleep(0.5)
        finally:
            self._storing.pop(cp.task.id).set_result(None)

    async def _dream(self, task: Task, cp: DreamCheckpoint | None, features: frozenset[str],
                     lessons: list[Reason]) -> Result | None:
        opts: DreamerOptions = self.options
        budget = task.budget or Budget(max_rounds=opts.max_rounds, max_seconds=opts.max_seconds,
                                       candidates_per_round=opts.candidates_per_round)
        trace: list[RoundTrace] = list(cp.trace) if cp else []
        answers: dict[str, Any] = dict(cp.answers) if cp else {}
        spent = cp.spent if cp else 0.0
        resumes = cp.resumes + 1 if cp else 0
        pending = cp.pending if cp else None
        if cp is not None:
            self.log.info("resuming task %s at round %d", task.id, len(trace) + 1)
            await self._announce(task, TaskState.RUNNING, trace, spent, resumes)
        batch = self.memory.store.batch()
        if cp is None:
            record_task(batch, task)
        # claim it: a restarted replica resumes the checkpoints of its dead predecessor at once
        batch.checkpoint(task.id, encode_checkpoint(self._checkpoint(task, DreamStatus.RUNNING, trace, answers,
                                                                     spent, resumes)))
        await self.memory.commit(batch)
        began = time.monotonic()
        why = f"no candidate accepted in {budget.max_rounds} rounds"
        for rnd in range(len(trace) + 1, budget.max_rounds + 1):
            left = budget.max_seconds - spent - (time.monotonic() - began)
            if left <= 0:
                why = f"time budget of {budget.max_seconds:g}s spent after {rnd - 1} rounds"
                break
            kwargs: dict[str, Any] = {}
            if self._stateful:
                async def save(pending: dict[str, Any] | None, rnd_began: float = began) -> None:
                    cp_now = self._checkpoint(task, DreamStatus.RUNNING, trace, answers,
                                              spent + time.monotonic() - rnd_began, resumes, pending=pending)
                    batch = self.memory.store.batch()
                    batch.checkpoint(task.id, encode_checkpoint(cp_now))
                    await self.memory.commit(batch)

                kwargs["state"] = RoundState(pending if pending and pending.get("round") == rnd else None, save,
                                             deadline=time.monotonic() + left)
            try:
                out = await asyncio.wait_for(
                    self.reasoner.propose(task, rnd, budget.candidates_per_round, trace, lessons, **kwargs), left)
            except asyncio.TimeoutError:
                why = f"time budget of {budget.max_seconds:g}s spent while reasoning in round {rnd}"
                break
            except ReverieError as exc:
                return await self._finish(task, ResultStatus.FAILED, trace, answers, spent, began, resumes,
                                          reason=str(exc))
            pending = None
            proposals, usage, stop = (out.proposals, out.usage, out.stop) if isinstance(out, Proposals) \
                else (out, None, "")
            if not proposals:
                why = f"the reasoner has no untried candidate left after {rnd - 1} rounds"
                break
            round_began = time.monotonic()
            candidates = [self._candidate(task, rnd, i, p) for i, p in enumerate(proposals)]
            answers.update({c.id: p.answer for c, p in zip(candidates, proposals) if not p.invalid})
            timeout = min(opts.verdict_timeout, max(left, 0.05))
            judged = await asyncio.gather(*(self._judge(c, timeout) if not p.invalid else self._unusable(c, p)
                                            for c, p in zip(candidates, proposals)))
            trace.append(RoundTrace(round=rnd, candidates=tuple(judged), elapsed=time.monotonic() - round_began,
                                    usage=usage))
            accepted = [j for j in judged if j.outcome is Decision.ACCEPT]
            if accepted:
                best = max(accepted, key=_score)
                return await self._finish(task, ResultStatus.ACCEPTED, trace, answers, spent, began, resumes,
                                          accepted=best, answer=answers[best.candidate.id], features=features)
            paused = await self.control.pause_requested(task.id)
            status = DreamStatus.PAUSED if paused else DreamStatus.RUNNING
            await self._commit_round(task, trace, answers, spent + time.monotonic() - began, resumes,
                                     status, features)
            if stop:  # the reasoner will not go on (a model's refusal): asking again would repeat it
                return await self._finish(task, ResultStatus.FAILED, trace, answers, spent, began, resumes,
                                          reason=stop)
            if paused:
                await self.control.park(task)
                self.log.info("paused task %s after round %d", task.id, rnd)
                await self._announce(task, TaskState.PAUSED, trace, spent, resumes)
                return None  # the queue message is acked; `resume` queues the task again
        return await self._finish(task, ResultStatus.EXHAUSTED, trace, answers, spent, began, resumes, reason=why)

    async def _commit_round(self, task: Task, trace: list[RoundTrace], answers: dict[str, Any],
                            spent: float, resumes: int, status: DreamStatus,
                            features: frozenset[str], result: Result | None = None) -> None:
        batch = self.memory.store.batch()
        learned = record_round(batch, task, trace[-1], features)
        if result is not None:
            record_result(batch, result)  # also drops the checkpoint
        else:
            batch.checkpoint(task.id, encode_checkpoint(self._checkpoint(task, status, trace, answers, spent,
                                                                         resumes)))
        gossip = self.ctx.gossip
        staged = None
        if gossip is not None:  # what this round taught, for peers: staged in the round's own commit
            shares: list[Payload] = [LessonShare(lesson) for lesson in learned]
            if result is not None and result.accepted is not None:
                shares.append(MemoryShare(f"/accepted/{task.id}", accepted_summary(result)))
            staged = gossip.stage(batch, shares)
        await self.memory.commit(batch)
        if gossip is not None and staged:
            gossip.release(staged)

    def _checkpoint(self, task: Task, status: DreamStatus, trace: list[RoundTrace], answers: dict[str, Any],
                    spent: float, resumes: int, pending: dict[str, Any] | None = None) -> DreamCheckpoint:
        return DreamCheckpoint(task=task, status=status, trace=tuple(trace), answers=answers, spent=spent,
                               resumes=resumes, replica=self.ctx.replica, owner_pid=os.getpid(), pending=pending)

    async def _finish(self, task: Task, status: ResultStatus, trace: list[RoundTrace], answers: dict[str, Any],
                      spent: float, began: float, resumes: int, *, accepted: JudgedCandidate | None = None,
                      answer: Any = None, reason: str = "", features: frozenset[str] = frozenset()) -> Result:
        total = spent + time.monotonic() - began
        result = self._result(task, status, trace, total, accepted=accepted, answer=answer, reason=reason,
                              resumes=resumes)
        if status is ResultStatus.ACCEPTED:  # the accepting round is not committed yet
            await self._commit_round(task, trace, answers, total, resumes, DreamStatus.DONE, features, result)
        else:  # every round so far was committed when it ended
            batch = self.memory.store.batch()
            record_result(batch, result)
            await self.memory.commit(batch)
        self._finished += 1
        if self._finished % 100 == 0:
            await self.memory.collapse(keep_dead=self.options.keep_dead_branches)
        return result

    def _features(self, task: Task) -> frozenset[str]:
        features = getattr(self.reasoner, "features", None)
        return frozenset(features(task)) if features is not None else frozenset()

    def _candidate(self, task: Task, rnd: int, index: int, p: Proposal) -> Candidate:
        return Candidate(id=new_id(), task=task, round=rnd, index=index, steps=p.steps,
                         text=p.text, rationale=p.rationale, dreamer=self.ctx.name)

    async def _unusable(self, cand: Candidate, p: Proposal) -> JudgedCandidate:
        """A proposal the reasoner could not make usable (off-schema model output): rejected
        with its reason, so the next round can correct it; no critic is asked."""
        self.ctx.counters["proposals.unusable"] += 1
        verdict = Verdict(candidate_id=cand.id, critic=f"{self.ctx.name}.reasoner", decision=Decision.REJECT,
                          reasons=(Reason(code=p.invalid_code, text=p.invalid),))
        slim = msgspec.structs.replace(cand, task=_slim_task(cand.task))
        return JudgedCandidate(candidate=slim, verdicts=(verdict,), outcome=Decision.REJECT)

    async def _judge(self, cand: Candidate, timeout: float) -> JudgedCandidate:
        opts: DreamerOptions = self.options
        subject = self.ctx.bus.subjects.candidate(cand.task.id)
        verdicts: dict[str, Verdict] = {}
        failures: dict[str, MissingVerdict] = {}
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
            except (nats.errors.Error, asyncio.TimeoutError) as exc:  # reconnecting: ask again
                self.log.warning("asking critics about %s failed: %s", cand.id, exc)
                replies = []
            self._collect(cand, replies, verdicts, failures)
        got = tuple(verdicts[c] for c in self.critics if c in verdicts)
        outcome = decide(got, self.critics, opts.quorum, weights=opts.weights, threshold=opts.threshold)
        missing_critics = tuple(c for c in self.critics if c not in verdicts)
        why = tuple(failures.get(c) or MissingVerdict(
            critic=c, code="no_answer", message=f"no verdict within {timeout:g}s in {opts.verdict_attempts} attempt(s)")
            for c in missing_critics)
        # the trace (and checkpoint) names the task once; candidates in it carry only its id and kind
        slim = msgspec.structs.replace(cand, task=_slim_task(cand.task))
        return JudgedCandidate(candidate=slim, verdicts=got, outcome=outcome, missing=missing_critics,
                               why_missing=why)

    def _collect(self, cand: Candidate, replies: list[Reply], verdicts: dict[str, Verdict],
                 failures: dict[str, MissingVerdict]) -> None:
        for answer in replies:
            try:
                reply = self._verdicts.decode(answer.data)
            except ProtocolError as exc:
                self.log.warning("undecodable verdict for %s: %s", cand.id, exc)
                continue
            if isinstance(reply, Error):
                critic = answer.sender if answer.sender in self.critics else "(unnamed critic)"
                self._burst.warning(f"judge-error:{critic}:{reply.code}", "critic %s could not judge %s: %s",
                                    critic, cand.id, reply.message)
                before = failures.get(critic)
                spent = reply.usage if before is None or before.usage is None else (
                    before.usage if reply.usage is None else before.usage + reply.usage)
                failures[critic] = MissingVerdict(critic=critic, code=reply.code, message=reply.message, usage=spent)
            elif reply.candidate_id != cand.id:
                continue
            elif reply.critic not in self.critics:  # a custom critic that names another critic, or none
                self.ctx.counters["verdicts.misnamed"] += 1
                self._burst.warning(
                    f"misnamed:{answer.sender}", "dropped a verdict on %s that names critic %r, which this "
                    "dreamer does not wait for (sent by %r; a critic's verdicts must name the agent itself, "
                    "ctx.name); %d such verdicts so far", cand.id, reply.critic, answer.sender or "an unnamed sender",
                    self.ctx.counters["verdicts.misnamed"])
            # the bus names the sender (and on an authenticated bus the server vouches for it);
            # an unnamed reply, from a raw-NATS critic, is taken only where nobody is vouched for
            elif answer.sender == reply.critic or (not answer.sender and not self.ctx.bus.authenticated):
                verdicts.setdefault(reply.critic, reply)
            else:
                self.ctx.counters["verdicts.impostor"] += 1
                self._burst.warning(
                    f"impostor:{answer.sender}", "dropped a verdict on %s that claims critic %r but was sent "
                    "by %r (%d such verdicts so far)", cand.id, reply.critic, answer.sender or "an unnamed sender",
                    self.ctx.counters["verdicts.impostor"])

    def _result(self, task: Task, status: ResultStatus, trace: list[RoundTrace], elapsed: float, *,
                accepted: JudgedCandidate | None = None, answer: Any = None, reason: str = "",
                resumes: int = 0) -> Result:
        by_agent = usage_by_agent(self.ctx.name, trace)
        rejected = [j for r in trace for j in r.candidates if j.outcome is Decision.REJECT]
        best = tuple(sorted(rejected, key=_score, reverse=True)[: self.options.keep_best])
        if status is ResultStatus.EXHAUSTED and best:
            reason += "; best rejected: " + "; ".join(
                f"{' -> '.join(j.candidate.steps)} ({_reasons(j)})" for j in best[:1])
        return Result(task_id=task.id, status=status, agent=self.ctx.name, answer=answer,
                      accepted=accepted, rounds=len(trace), trace=tuple(_quarantine(r) for r in trace),
                      best_rejected=best if status is not ResultStatus.ACCEPTED else (),
                      reason=reason, elapsed=elapsed, resumes=resumes, usage=_total(by_agent),
                      usage_by_agent=by_agent)

    # ------------------------------------------------------------------ task queries

    @handler("ctl.task.show", shared=False)
    async def show(self, query: TaskQuery) -> TaskInfo | Error:
        try:
            check_task_id(query.task_id)
        except InvalidTaskId as exc:
            return Error(code=exc.reason, message=exc.detail)
        cp = await self.memory.checkpoint(query.task_id, decode_checkpoint)
        if cp is not None:
            return _info(cp, self.ctx.name)
        result = await self.memory.load(result_path(query.task_id), decode_result)
        if result is not None:
            cands = [j for r in result.trace for j in r.candidates]
            return TaskInfo(task_id=query.task_id, state=TaskState.DONE, agent=self.ctx.name, rounds=result.rounds,
                            candidates=len(cands), rejected=sum(1 for j in cands if j.outcome is not Decision.ACCEPT),
                            spent=result.elapsed, resumes=result.resumes)
        return TaskInfo(task_id=query.task_id, state=TaskState.UNKNOWN, agent=self.ctx.name)

    async def _announce(self, task: Task, state: TaskState, trace: list[RoundTrace], spent: float,
                        resumes: int) -> None:
        cp = self._checkpoint(task, DreamStatus.RUNNING, trace, {}, spent, resumes)
        info = msgspec.structs.replace(_info(cp, self.ctx.name), state=state)
        await self.ctx.bus.publish(self.ctx.bus.subjects.rel(f"events.task.{task.id}"), info)


def _lookup(store: MemoryStore, task_id: str) -> tuple[Result | None, DreamCheckpoint | None, bool]:
    """What memory holds of a task: its result, its checkpoint, whether it was dreamt here at all.
    Runs on the memory thread, in one hop (it queues behind group commits' fsyncs)."""
    done = store.load(result_path(task_id), decode_result)
    if done is not None:
        return done, None, True
    cp = store.checkpoint(task_id, decode_checkpoint)
    return None, cp, cp is not None or store.get(task_path(task_id)) is not None


def _info(cp: DreamCheckpoint, agent: str) -> TaskInfo:
    state = {DreamStatus.RUNNING: TaskState.RUNNING, DreamStatus.PAUSED: TaskState.PAUSED,
             DreamStatus.DONE: TaskState.DONE}[cp.status]
    cands = [j for r in cp.trace for j in r.candidates]
    return TaskInfo(task_id=cp.task.id, state=state, agent=agent, rounds=len(cp.trace), candidates=len(cands),
                    rejected=sum(1 for j in cands if j.outcome is not Decision.ACCEPT), spent=cp.spent,
                    resumes=cp.resumes)


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


def _slim_task(task: Task) -> Task:
    return Task(id=task.id, kind=task.kind, input=None, created_at=task.created_at)


def _score(j: JudgedCandidate) -> float:
    return sum(v.score for v in j.verdicts) / len(j.verdicts) if j.verdicts else 0.0


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
                                                                     rationale=""))
        if j.outcome is Decision.FLAG else j for j in r.candidates))
