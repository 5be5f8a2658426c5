"""Runs one agent replica on a bus: subscriptions, dispatch, error accounting, status."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from types import TracebackType
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig

from reverie.protocol import (
    AgentState,
    AgentStatus,
    Codec,
    Error,
    Lifecycle,
    ProtocolError,
    Result,
    ResultStatus,
    StatusRequest,
    Task,
    check_task_id,
    encode,
)

from ..agent import Agent, BoundHandler, Context
from ..bus.bus import Bus
from ..config import AgentSpec, SwarmConfig
from ..gossip.node import GossipNode
from ..kinds import Roster
from ..logs import BurstLog
from ..memory import Memory, Quarantined

ACK_WAIT = 15.0
MAX_DELIVER = 5
FETCH_TIMEOUT = 0.5
STORE_PATIENCE = 20.0


class AgentHost:
    """Hosts one replica of an agent class. `async with AgentHost(...)` starts it (the
    agent is subscribed and ready on entry) and stops it on exit."""

    def __init__(self, agent_cls: type[Agent], *, bus: Bus, config: SwarmConfig, spec: AgentSpec,
                 replica: int = 0) -> None:
        self.bus = bus
        self.config = config
        self.spec = spec
        self.replica = replica
        self.log = logging.getLogger(f"reverie.agent.{spec.name}")
        self.handlers = agent_cls.handlers(spec.subjects)
        options = msgspec.convert(spec.options, agent_cls.Options)
        self.counters: Counter[str] = Counter()
        self.ctx = Context(bus=bus, config=config, spec=spec, options=options, replica=replica,
                           log=self.log, counters=self.counters)
        self.agent = agent_cls(self.ctx)
        self.state = AgentState.STARTING
        self.started_at = time.time()
        self._burst = BurstLog(self.log)
        self._subs: list[Subscription] = []
        self._loops: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self.crashed = asyncio.Event()
        """Set when a background loop of the host died; the worker then exits non-zero and the
        supervisor restarts the replica (a half-dead agent is worse than a restarted one)."""
        self.crash_reason = ""
        self.gossip: GossipNode | None = None
        self._memory: Memory | None = None
        self._memory_lock = asyncio.Lock()
        self.ctx.host = self
        self._status_codec: Codec[StatusRequest] = Codec(StatusRequest, max_bytes=config.max_message_bytes)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AgentHost:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # ------------------------------------------------------------------ what the agent's Context asks for

    async def memory(self) -> Memory:
        """The agent's one `Memory` in this process, opened on first use (the gossip node's too)."""
        async with self._memory_lock:
            if self._memory is None:
                self._memory = await Memory.open(self.config.data_path / self.spec.name, agent=self.spec.name,
                                                 on_quarantine=self._quarantined)
            return self._memory

    def _quarantined(self, moved: list[Quarantined]) -> None:
        """Damaged memory moved aside (the memory layer logged each value once): count it."""
        self.counters["memory.quarantined"] += len(moved)

    async def store_result(self, result: Result) -> bool:
        return await self._store(result)

    def roles(self) -> dict[str, str]:
        return {name: kind.role for name, kind in Roster.of(self.config).items()}

    # ------------------------------------------------------------------ lifecycle (start, stop)

    async def start(self) -> None:
        if GossipNode.wanted(self.config, self.spec.name, log=self.log):
            self.gossip = await GossipNode.open(self.config, self.spec.name, self.bus, memory=await self.memory(),
                                                log=self.log)
        self.ctx.gossip = self.gossip
        await self.agent.on_start()
        if any(h.durable for h in self.handlers):
            await self.bus.ensure_streams(self.config.streams)
        for h in self.handlers:
            if h.durable:
                started = asyncio.get_running_loop().create_future()
                self._loops.append(self._own(self._consume(h, started), f"consume:{h.name}"))
                await started  # the durable consumer exists: tasks published from now on reach us
            else:
                self._subs.append(await self._subscribe(h))
        self._subs.append(await self.bus.nc.subscribe(self.bus.subjects.status, cb=self._on_status))
        self._loops.append(self._own(self._heartbeat(), "heartbeat"))
        if self.gossip is not None:  # one replica answers peers; every replica may share
            await self.gossip.start(serve=self.replica == 0)
        await self.bus.nc.flush()
        self.state = AgentState.READY
        await self._announce(AgentState.READY)

    async def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.state = AgentState.STOPPING
        await self._announce(AgentState.STOPPING)
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass
        if self._loops:
            _, pending = await asyncio.wait(self._loops, timeout=FETCH_TIMEOUT * 3)
            for loop in pending:
                loop.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()  # a cancelled task handler naks its message: it is redelivered
            await asyncio.gather(*pending, return_exceptions=True)
        if self.gossip is not None:
            await self.gossip.stop()
        await self.agent.on_stop()
        if self._memory is not None:
            await self._memory.close()
        self.state = AgentState.STOPPED
        await self._announce(AgentState.STOPPED)

    def _own(self, coro: Any, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._loop_ended)
        return task

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping.is_set():
            return
        exc = task.exception()
        self.crash_reason = f"{task.get_name()} ended: {exc!r}" if exc else f"{task.get_name()} ended"
        self.log.error("agent loop %s", self.crash_reason, exc_info=exc)
        self.counters["errors"] += 1
        self.counters["error.crash"] += 1
        self.crashed.set()

    async def _announce(self, state: AgentState) -> None:
        event = Lifecycle(agent=self.spec.name, replica=self.replica, pid=os.getpid(), state=state)
        try:
            await self.bus.publish(self.bus.subjects.agent_event(self.spec.name), event)
        except nats.errors.Error as exc:
            self.log.debug("could not announce %s: %s", state.value, exc)

    def status(self) -> AgentStatus:
        return AgentStatus(agent=self.spec.name, replica=self.replica, pid=os.getpid(),
                           state=self.state, role=type(self.agent).role, started_at=self.started_at,
                           in_flight=len(self._inflight),
                           counters=dict(self.counters) | (dict(self.gossip.counters) if self.gossip else {}))

    async def _heartbeat(self) -> None:
        subject = self.bus.subjects.heartbeat(self.spec.name)
        while not self._stopping.is_set():
            try:
                await self.bus.publish(subject, self.status())
            except nats.errors.Error:
                pass
            try:
                await asyncio.wait_for(self._stopping.wait(), self.config.heartbeat_interval)
            except asyncio.TimeoutError:
                pass

    async def _on_status(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            self._status_codec.decode(msg.data)
        except ProtocolError as exc:
            self._count_bad(msg.subject, exc)
            await self._reply(msg, Error(code=exc.reason, message=exc.detail, subject=msg.subject))
            return
        await self._reply(msg, self.status())

    # ------------------------------------------------------------------ accounting

    def _count_bad(self, subject: str, exc: ProtocolError) -> None:
        self.counters["errors"] += 1
        self.counters[f"error.{exc.reason}"] += 1
        self._burst.warning(f"bad:{exc.reason}", "dropped a message on %s (%s): %s",
                            subject, exc.reason, exc.detail)

    def _count_handler_error(self, h: BoundHandler, exc: BaseException) -> None:
        self.counters["errors"] += 1
        self.counters["error.handler"] += 1
        self._burst.warning(f"handler:{h.name}", "handler %s failed: %r", h.name, exc, exc_info=True)

    async def _reply(self, msg: Msg, reply: msgspec.Struct) -> None:
        try:  # a fan-out request's inbox gets `<inbox>.<our name>`: the reply names its sender
            await self.bus.nc.publish(self.bus.reply_subject(msg.reply), encode(reply))
        except nats.errors.Error as exc:
            self._burst.warning("reply", "could not reply on %s: %s", msg.reply, exc)

    async def _call(self, h: BoundHandler, message: Any) -> Any:
        if h.wants_ctx:
            return await h.func(self.agent, message, self.ctx)
        return await h.func(self.agent, message)

    def _limit(self, h: BoundHandler) -> int:
        return self.spec.concurrency or h.spec.concurrency

    # ------------------------------------------------------------------ core subscriptions

    async def _subscribe(self, h: BoundHandler) -> Subscription:
        codec: Codec[Any] = Codec(h.message_type, max_bytes=self.config.max_message_bytes)
        queue = self.spec.name if h.spec.queue == "" else (h.spec.queue or "")
        limit = self._limit(h)
        slots = asyncio.Semaphore(limit)

        async def serve(msg: Msg) -> None:
            self.counters["received"] += 1
            try:
                message = codec.decode(msg.data)
            except ProtocolError as exc:
                self._count_bad(msg.subject, exc)
                if msg.reply:
                    await self._reply(msg, Error(code=exc.reason, message=exc.detail, subject=msg.subject))
                return
            try:
                reply = await self._call(h, message)
            except Exception as exc:
                self._count_handler_error(h, exc)
                if msg.reply:
                    await self._reply(msg, Error(code="handler", message=f"{type(exc).__name__}: {exc}",
                                                 subject=msg.subject))
                return
            self.counters["handled"] += 1
            if reply is not None and msg.reply:
                if isinstance(reply, msgspec.Struct):
                    await self._reply(msg, reply)
                else:
                    self._count_handler_error(h, TypeError(f"{h.name} returned {type(reply).__name__}, "
                                                           "not a reverie.protocol message"))

        async def on_msg(msg: Msg) -> None:
            if limit == 1:
                await serve(msg)
                return
            await slots.acquire()  # backpressure: holds this subscription's delivery loop
            task = asyncio.create_task(serve(msg))
            self._inflight.add(task)
            task.add_done_callback(release)

        def release(task: asyncio.Task[None]) -> None:
            self._inflight.discard(task)
            slots.release()

        return await self.bus.nc.subscribe(self.bus.subjects.rel(h.spec.pattern), queue=queue, cb=on_msg,
                                           pending_msgs_limit=1_000_000)

    # ------------------------------------------------------------------ durable task consumption

    async def _consume(self, h: BoundHandler, started: asyncio.Future[None]) -> None:
        codec: Codec[Task] = Codec(Task, max_bytes=self.config.max_message_bytes)
        limit = self._limit(h)
        try:
            psub = await self.bus.js.pull_subscribe(
                self.bus.subjects.rel(h.spec.pattern), durable=self.spec.name,
                stream=self.bus.subjects.tasks_stream,
                config=ConsumerConfig(ack_wait=ACK_WAIT, max_deliver=MAX_DELIVER,
                                      max_ack_pending=max(limit * 4, 256)),
            )
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await self._fetch_loop(h, codec, psub, limit)
        finally:
            # a pull subscription holds fetched-but-unread messages that a connection drain
            # would wait on forever; in-flight tasks still ack through their own reply subject
            try:
                await psub.unsubscribe()
            except nats.errors.Error:
                pass

    async def _fetch_loop(self, h: BoundHandler, codec: Codec[Task], psub: Any, limit: int) -> None:
        capacity = asyncio.Event()
        capacity.set()
        running: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            self._inflight.discard(task)
            capacity.set()

        while not self._stopping.is_set():
            free = limit - len(running)
            if free <= 0:
                capacity.clear()
                await capacity.wait()
                continue
            try:
                msgs = await psub.fetch(batch=free, timeout=FETCH_TIMEOUT)
            except asyncio.TimeoutError:  # nats-py raises its own and, under load, asyncio's
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
                    nats.errors.DrainTimeoutError):
                await asyncio.sleep(FETCH_TIMEOUT)  # the client is reconnecting; poll again shortly
                continue
            except nats.errors.Error as exc:
                self._burst.warning("fetch", "fetching tasks failed: %s", exc)
                await asyncio.sleep(FETCH_TIMEOUT)
                continue
            for msg in msgs:
                task = asyncio.create_task(self._serve_task(h, codec, msg))
                running.add(task)
                self._inflight.add(task)
                task.add_done_callback(done)

    async def _serve_task(self, h: BoundHandler, codec: Codec[Task], msg: Msg) -> None:
        self.counters["received"] += 1
        try:
            task = codec.decode(msg.data)
            check_task_id(task.id)  # publishers other than our client check nothing
        except ProtocolError as exc:
            await self._refuse_task(msg, exc)
            return
        if msg.metadata.num_delivered > 1 and await self._already_done(task):
            self.counters["duplicate"] += 1
            await _quietly(msg.ack())  # redelivered after its result was stored: do nothing twice
            return
        ticker = asyncio.create_task(self._keep_alive(msg))
        try:
            result = await self._call(h, task)
        except asyncio.CancelledError:
            await _quietly(msg.nak())  # stopping: hand the task back for prompt redelivery
            raise
        except Exception as exc:
            self._count_handler_error(h, exc)
            if msg.metadata.num_delivered < MAX_DELIVER:
                await msg.nak(delay=min(2.0 ** msg.metadata.num_delivered, 30.0))
                return
            result = Result(task_id=task.id, status=ResultStatus.FAILED, agent=self.spec.name,
                            reason=f"handler failed {MAX_DELIVER} times; last: {type(exc).__name__}: {exc}")
        finally:
            ticker.cancel()
        if result is not None:
            if not isinstance(result, Result) or result.task_id != task.id:
                result = self._misreturned(h, task, result)
            if not await self._store(result):
                await _quietly(msg.nak(delay=1.0))
                return
        self.counters["handled"] += 1
        await _quietly(msg.ack())

    async def _refuse_task(self, msg: Msg, exc: ProtocolError) -> None:
        """Count, terminate and report a task that cannot be worked on: never redeliver it."""
        self._count_bad(msg.subject, exc)
        await _quietly(msg.term())
        await _quietly(self.bus.publish(self.bus.subjects.rel("events.error"),
                                        Error(code=exc.reason, message=exc.detail, subject=msg.subject)))

    def _misreturned(self, h: BoundHandler, task: Task, returned: Any) -> Result:
        """The failed result standing in for what a handler returned instead of this task's Result."""
        what = (f"the result of task {returned.task_id!r}" if isinstance(returned, Result)
                else f"{type(returned).__name__}, not a Result")
        self._count_handler_error(h, TypeError(f"{h.name} returned {what}; a task handler returns "
                                                  "the task's Result or None"))
        return Result(task_id=task.id, status=ResultStatus.FAILED, agent=self.spec.name,
                      reason=f"handler returned {what}")

    async def _already_done(self, task: Task) -> bool:
        try:
            return await self.bus.get_result(task.id) is not None
        except (nats.errors.Error, asyncio.TimeoutError, ProtocolError):
            return False

    async def _store(self, result: Result) -> bool:
        """Store a result, retrying through a server outage (the client reconnects by itself)
        for up to STORE_PATIENCE seconds: redelivery would cost a whole ack_wait."""
        deadline = time.monotonic() + STORE_PATIENCE
        while True:
            try:
                await self.bus.store_result(result)
                return True
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                if time.monotonic() > deadline or self.bus.nc.is_closed:
                    self._burst.warning("store", "could not store result of %s: %s", result.task_id, exc)
                    return False
                await asyncio.sleep(0.25)

    async def _keep_alive(self, msg: Msg) -> None:
        """Tell JetStream a long task is still being worked on, so it is not redelivered."""
        while True:
            await asyncio.sleep(ACK_WAIT / 3)
            await _quietly(msg.in_progress())


async def _quietly(op: Any) -> None:
    try:
        await op
    except (nats.errors.Error, asyncio.TimeoutError):
        pass
