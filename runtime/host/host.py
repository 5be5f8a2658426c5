"""Runs one agent replica on a bus: its lifecycle, its one Memory, status and heartbeats.

What the agent's handlers receive is served by `dispatch` (core subjects) and `durable`
(JetStream tasks); the host starts them, owns their tasks, and is the `HostServices` that the
agent's `Context` asks for its memory, the result store and the swarm's roles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from reverie.protocol import AgentState, AgentStatus, Codec, Lifecycle, Result, StatusRequest

from ..agent import Agent, Context
from ..bus.bus import Bus
from ..bus.responder import Responder
from ..config import AgentSpec, SwarmConfig
from ..gossip.node import GossipNode
from ..hostname import host_name
from ..kinds import Roster
from ..memory import Memory, MemoryError, Quarantined
from .dispatch import Dispatcher
from .durable import FETCH_TIMEOUT, DurableConsumer, ResultStore

__all__ = ["AgentHost"]


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
        options = msgspec.convert(spec.options, agent_cls.Options)
        self.handlers = agent_cls.handlers(spec.subjects, options)
        self.counters: Counter[str] = Counter()
        self.ctx = Context(bus=bus, config=config, spec=spec, options=options, replica=replica,
                           log=self.log, counters=self.counters)
        self.agent = agent_cls(self.ctx)
        self.state = AgentState.STARTING
        self.started_at = time.time()
        self.dispatch = Dispatcher(self.agent, self.ctx, bus=bus, config=config, spec=spec,
                                   counters=self.counters, log=self.log)
        self.results = ResultStore(bus, self.dispatch.burst)
        self._subs: list[Subscription] = []
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self.crashed = asyncio.Event()
        """Set when a background loop of the host died; the worker then exits non-zero and the
        supervisor restarts the replica (a half-dead agent is worse than a restarted one)."""
        self.crash_reason = ""
        self.gossip: GossipNode | None = None
        self._memory: Memory | None = None
        self._memory_lock = asyncio.Lock()
        self.memory_bytes = 0
        self.host_name = host_name()
        """What the open memory store used at the last heartbeat (0 while it is not open)."""
        self.ctx.host = self
        self._status: Responder[StatusRequest] = self.dispatch.responder(
            Codec(StatusRequest, max_bytes=config.max_message_bytes))

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
        return await self.results.store(result)

    def roles(self) -> dict[str, str]:
        return {name: kind.role for name, kind in Roster.of(self.config).items()}

    # ------------------------------------------------------------------ lifecycle (start, stop)

    async def start(self) -> None:
        """Open the agent's resources, start it and subscribe its handlers. If any step fails,
        what was started is stopped again (in reverse order) and the error propagates."""
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._close_memory)  # opened by the gossip node or the agent
            if GossipNode.wanted(self.config, self.spec.name, log=self.log):
                self.gossip = await GossipNode.open(self.config, self.spec.name, self.bus,
                                                    memory=await self.memory(), log=self.log)
            if self.gossip is not None:
                stack.push_async_callback(self.gossip.stop)  # flushes what the agent shared
            self.ctx.gossip = self.gossip
            await self.agent.on_start()
            stack.push_async_callback(self.agent.on_stop)
            stack.push_async_callback(self._stop_serving)
            await self._serve()
            if self.gossip is not None:  # one replica answers peers; every replica may share
                await self.gossip.start(serve=self.replica == 0)
            await self.bus.nc.flush()
            self._stack = stack.pop_all()
        self.state = AgentState.READY
        await self._announce(AgentState.READY)

    async def stop(self) -> None:
        """Stop serving, wait for (or cancel) in-flight handlers, stop the agent, release its resources."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.state = AgentState.STOPPING
        await self._announce(AgentState.STOPPING)
        await self._stack.aclose()
        self.state = AgentState.STOPPED
        await self._announce(AgentState.STOPPED)

    async def _serve(self) -> None:
        if any(h.durable for h in self.handlers):
            await self.bus.ensure_streams(self.config.streams)
        for h in self.handlers:
            if h.durable:
                consumer = DurableConsumer(self.dispatch, h, self.results, stopping=self._stopping)
                started = asyncio.get_running_loop().create_future()
                self._loops.append(self._own(consumer.run(started), f"consume:{h.name}"))
                await started  # the durable consumer exists: tasks published from now on reach us
            else:
                self._subs.append(await self.dispatch.subscribe(h))
        self._subs.append(await self.bus.nc.subscribe(self.bus.subjects.status, cb=self._on_status))
        self._loops.append(self._own(self._heartbeat(), "heartbeat"))

    async def _stop_serving(self) -> None:
        self._stopping.set()
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
        inflight = self.dispatch.inflight
        if inflight:
            _, pending = await asyncio.wait(set(inflight), timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()  # a cancelled task handler naks its message: it is redelivered
            await asyncio.gather(*pending, return_exceptions=True)

    async def _close_memory(self) -> None:
        if self._memory is not None:
            await self._memory.close()

    def _own(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
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

    # ------------------------------------------------------------------ status

    async def _announce(self, state: AgentState) -> None:
        event = Lifecycle(agent=self.spec.name, replica=self.replica, pid=os.getpid(), state=state)
        try:
            await self.bus.publish(self.bus.subjects.agent_event(self.spec.name), event)
        except nats.errors.Error as exc:
            self.log.debug("could not announce %s: %s", state.value, exc)

    def status(self) -> AgentStatus:
        return AgentStatus(agent=self.spec.name, replica=self.replica, pid=os.getpid(),
                           state=self.state, role=type(self.agent).role, started_at=self.started_at,
                           in_flight=len(self.dispatch.inflight), memory_bytes=self.memory_bytes,
                           host=self.host_name, node=self.bus.node,
                           counters=dict(self.counters) | (dict(self.gossip.counters) if self.gossip else {}))

    async def _measure_memory(self) -> None:
        """The memory store's size, if the agent's memory is open (never opened just to measure it).
        Asked on the memory thread, behind the calls already queued: a heartbeat waits a moment at most."""
        memory = self._memory
        if memory is None:
            return
        with contextlib.suppress(TimeoutError, MemoryError):
            async with asyncio.timeout(min(1.0, self.config.heartbeat_interval / 2)):
                self.memory_bytes = await memory.used_bytes()

    async def _heartbeat(self) -> None:
        subject = self.bus.subjects.heartbeat(self.spec.name)
        while not self._stopping.is_set():
            await self._measure_memory()
            try:
                await self.bus.publish(subject, self.status())
            except nats.errors.Error:
                pass
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.heartbeat_interval):
                    await self._stopping.wait()

    async def _on_status(self, msg: Msg) -> None:
        if msg.reply and await self._status.decode(msg) is not None:
            await self._status.answer(msg, self.status())
