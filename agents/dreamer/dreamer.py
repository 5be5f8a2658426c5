"""The dreamer: explores candidate paths for a task, has every critic judge them, refines.

See DESIGN.md, "The dream loop". Reasoning runs in the task's own coroutine, so the agent's
message loop keeps serving while many tasks dream at once (bounded by `concurrency`); one
task's dream is a `TaskDream` (dream.py). This module is the agent: its handlers, its start
and stop, and its background work (resuming a dead predecessor's tasks, storing again the
results the results stream lost, scheduled consolidation).

Damaged memory (a value that no longer opens) never stops the dreamer: the memory layer
quarantines it and it reads as absent. A task whose checkpoint is lost that way resumes from
the rounds its memory still holds; a lost result is answered from the results stream, or the
task is dreamt again; a lost lesson is simply not recalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import nats.errors

from reverie.protocol import (
    Error,
    InvalidTaskId,
    ProtocolError,
    Result,
    ResultStatus,
    ReverieError,
    Task,
    TaskInfo,
    TaskList,
    TaskListQuery,
    TaskQuery,
    TaskState,
    check_task_id,
)
from reverie.runtime import Agent, TaskControl, handler, pid_alive
from reverie.runtime.memory import MemoryStore
from reverie.runtime.memory import dreams as consolidation

from ..domains import BUILTIN_DOMAINS, load_domains
from ..reasoners import Reasoner
from ..reasoners.factory import ReasonerConfigError, check_reasoner, claude_setup, make_reasoner, reasoner_kinds
from .dream import DreamKit, TaskDream
from .jury import Jury
from .options import DreamerOptions
from .records import (
    DreamCheckpoint,
    DreamStatus,
    decode_checkpoint,
    decode_result,
    record_result,
    recovered_trace,
    result_path,
    task_info,
    task_path,
)

__all__ = ["DREAM_CONCURRENCY", "Dreamer", "served_kinds"]

DREAM_CONCURRENCY = 64
"""Tasks one dreamer works on at once, unless the config's `concurrency` says otherwise."""


class _Stop(Exception):
    """Leaving the background task group with this error cancels what still runs in it."""


class Dreamer(Agent):
    role = "dreamer"
    Options = DreamerOptions

    @classmethod
    def subjects(cls, options: DreamerOptions) -> dict[str, str | Sequence[str]]:
        """The dreamer consumes one task subject per kind it serves."""
        return {"dream": [f"task.{kind}" for kind in served_kinds(options)]}

    @classmethod
    def check_options(cls, options: DreamerOptions) -> None:
        check_reasoner(options.reasoner, options.reasoner_options)
        served_kinds(options)
        try:
            load_domains(options.domains)
        except (ImportError, AttributeError, TypeError) as exc:
            raise ReasonerConfigError(f"domains: {exc}", field=".domains", detail=str(exc)) from None
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
        self.domains = load_domains(opts.domains)
        critics = list(opts.critics) if opts.critics is not None else self.ctx.peers("critic")
        if not critics:
            self.log.warning("no critic agents configured: every candidate will be accepted")
        elif "code" in self.domains and "code" in served_kinds(opts) and not any(
                spec.name in critics and spec.kind == "sandbox-critic" for spec in self.ctx.config.agents):
            self.log.warning("this dreamer serves code tasks but none of its critics is a sandbox-critic: "
                             "patches will be accepted without their tests being run")
        self.memory = await self.ctx.memory()
        self.reasoner.attach_memory(self.memory)  # a reasoner that reads (and writes notes into) it
        self.jury = Jury(self.ctx, opts, critics, self.log)
        self.reasoner.attach_rules(self._critics_rules())  # a reasoner that aims at the LLM critics' constitution
        self.control = await TaskControl.open(self.ctx.bus, replicas=self.ctx.config.streams.replicas)
        self._kit = DreamKit(ctx=self.ctx, options=opts, memory=self.memory, reasoner=self.reasoner,
                             control=self.control, jury=self.jury, log=self.log)
        self._finished = 0
        self._active: dict[str, asyncio.Future[None]] = {}
        self._storing: dict[str, asyncio.Future[None]] = {}  # resumed orphans, until their result is stored
        self._stack = contextlib.AsyncExitStack()
        self._background = await self._stack.enter_async_context(asyncio.TaskGroup())
        await self._resume_orphans()
        self._spawn(self._republish_recent(), "republish")
        if opts.consolidate_every > 0:
            self._spawn(self._consolidate_periodically(), "consolidation")

    async def on_stop(self) -> None:
        try:
            async with self._stack:
                raise _Stop  # cancels the background tasks and waits for them
        except* _Stop:
            pass
        await self.reasoner.close()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` in the background group: an unexpected error is logged and counted, and
        neither stops the dreamer nor cancels the other background tasks."""
        async def logged() -> None:
            try:
                await work
            except Exception:
                self.ctx.counters["dreamer.background_errors"] += 1
                self.log.exception("background task %s failed", name)

        self._background.create_task(logged(), name=name)

    @property
    def critics(self) -> list[str]:
        """The critics this dreamer waits for."""
        return self.jury.critics

    def _critics_rules(self) -> list[str]:
        """The constitutions of the `llm-critic` agents among this dreamer's critics."""
        rules: list[str] = []
        for spec in self.ctx.config.agents:
            if spec.name in self.critics and spec.kind == "llm-critic":
                rules += [str(r) for r in spec.options.get("constitution", [])]
        return list(dict.fromkeys(rules))

    async def _consolidate_periodically(self) -> None:
        every = self.options.consolidate_every
        while True:
            await asyncio.sleep(every)
            try:
                record = await self.memory.run(consolidation.dream, self.memory.store, in_place=True,
                                               keep_dead=self.options.keep_dead_branches,
                                               instructions=self.options.consolidation_instructions,
                                               consolidator=self._consolidator)
            except Exception as exc:  # the CLI's dream holds the lock, Claude is down: next time
                self.log.warning("scheduled consolidation skipped: %s", exc)
                continue
            c = record.changes
            self.log.info("consolidation dream %s: merged %d duplicate lessons, collapsed %d dead branches",
                          record.id, c.lessons_merged, c.branches_dropped)

    @functools.cached_property
    def _consolidator(self) -> consolidation.Consolidator | None:
        """Built once: one HTTP client for every scheduled dream of this agent."""
        if self.options.consolidator != "claude":
            return None
        consolidator: consolidation.Consolidator = claude_setup().make_consolidator(self.options.consolidator_options)
        return consolidator

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
        except (TimeoutError, nats.errors.Error, ProtocolError) as exc:
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
        domain = self.domains.get(task.kind)  # a kind without a domain (moved by `subjects`) is the reasoner's
        try:
            if await self.control.cancel_requested(task.id):  # cancelled while queued or parked
                return await TaskDream(self._kit, task, cp, domain).cancel()
            try:
                features = self.reasoner.features(task)
                if domain is not None:  # also checks the input, naming a bad field
                    features |= domain.features(task)
                lessons = await self.memory.recall(features, limit=self.options.recall_limit) if features else []
            except ReverieError as exc:
                return TaskDream(self._kit, task, None, domain).result(ResultStatus.FAILED, reason=str(exc))
            result = await TaskDream(self._kit, task, cp, domain).run(features, [lesson.reason for lesson in lessons])
            if result is not None:
                self._finished += 1
                if self._finished % 100 == 0:
                    await self.memory.collapse(keep_dead=self.options.keep_dead_branches)
            return result
        finally:
            del self._active[task.id]
            future.set_result(None)

    # ------------------------------------------------------------------ after a restart

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
                self._spawn(self._finish_orphan(cp, slots), f"resume:{task_id}")

    async def _finish_orphan(self, cp: DreamCheckpoint, slots: asyncio.Semaphore) -> None:
        """Dream a dead predecessor's task on and store its result; at most the dreamer's
        `concurrency` of them at once (a restart may find hundreds)."""
        try:
            async with slots:
                self.ctx.counters["tasks.resumed"] += 1
                result = await self._guarded(cp.task, cp)
                if result is not None and not await self.ctx.store_result(result):
                    # the result is in memory: the task's redelivered queue message publishes it
                    self.log.warning("gave up storing the result of resumed task %s for now", cp.task.id)
        finally:
            self._storing.pop(cp.task.id).set_result(None)

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
            except (TimeoutError, ReverieError, nats.errors.Error) as exc:
                self.log.warning("checking the stored result of %s: %s", task_id, exc)
                continue
            republished += 1
            self.ctx.counters["results.republished"] += 1
        if republished:
            self.log.warning("stored again %d recent result(s) the results stream had lost", republished)

    # ------------------------------------------------------------------ task queries

    @handler("ctl.task.list", shared=False)
    async def list_tasks(self, query: TaskListQuery) -> TaskList:
        return TaskList(agent=self.ctx.name, tasks=tuple(await self.memory.run(_running, self.memory.store,
                                                                               self.ctx.name)))

    @handler("ctl.task.show", shared=False)
    async def show(self, query: TaskQuery) -> TaskInfo | Error:
        try:
            check_task_id(query.task_id)
        except InvalidTaskId as exc:
            return Error(code=exc.reason, message=exc.detail)
        cp = await self.memory.checkpoint(query.task_id, decode_checkpoint)
        if cp is not None:
            return task_info(cp, self.ctx.name)
        result = await self.memory.load(result_path(query.task_id), decode_result)
        if result is not None:
            return TaskInfo.of_result(result)
        return TaskInfo(task_id=query.task_id, state=TaskState.UNKNOWN, agent=self.ctx.name)


def _running(store: MemoryStore, name: str) -> list[TaskInfo]:
    """Every task this dreamer holds a checkpoint of, as its `TaskInfo` (on the memory thread)."""
    found = []
    for task_id in store.checkpoints():
        cp = store.checkpoint(task_id, decode_checkpoint)
        if cp is not None:
            found.append(task_info(cp, name))
    return found


def served_kinds(options: DreamerOptions) -> list[str]:
    """The task kinds a dreamer with these options serves: its `kinds`, or every domain's kind
    its reasoner can dream about. Raises `ReasonerConfigError` when that leaves none."""
    try:
        domains = sorted({*BUILTIN_DOMAINS, *options.domains})
        dreamt = reasoner_kinds(options.reasoner, options.reasoner_options)
    except (ImportError, AttributeError, TypeError) as exc:
        raise ReasonerConfigError(f"domains: {exc}", field=".domains", detail=str(exc)) from None
    if options.kinds is not None:
        if not options.kinds:
            raise ReasonerConfigError("kinds: name at least one task kind", field=".kinds",
                                      detail="name at least one task kind")
        return list(dict.fromkeys(options.kinds))
    kinds = [k for k in domains if k in dreamt]
    if not kinds:
        detail = (f"the reasoner dreams about {', '.join(sorted(dreamt)) or 'nothing'}, and no domain has those "
                  f"kinds ({', '.join(domains)}); add a domain or name `kinds`")
        raise ReasonerConfigError(f"kinds: {detail}", field=".kinds", detail=detail)
    return kinds


def _lookup(store: MemoryStore, task_id: str) -> tuple[Result | None, DreamCheckpoint | None, bool]:
    """What memory holds of a task: its result, its checkpoint, whether it was dreamt here at all.
    Runs on the memory thread, in one hop (it queues behind group commits' fsyncs)."""
    done = store.load(result_path(task_id), decode_result)
    if done is not None:
        return done, None, True
    cp = store.checkpoint(task_id, decode_checkpoint)
    return None, cp, cp is not None or store.get(task_path(task_id)) is not None
