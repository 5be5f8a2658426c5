"""The client side: `async with connect(config) as swarm: result = await swarm.submit(...)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry.trace import Span

from reverie.protocol import (
    AgentStatus,
    Budget,
    Codec,
    ProtocolError,
    Result,
    StatusRequest,
    Task,
    TaskInfo,
    TaskList,
    TaskListQuery,
    TaskProgress,
    TaskQuery,
    TaskState,
    new_id,
)

from .bus import Bus
from .bus.answers import Answers
from .bus.credentials import CLIENT, connect_bus, seed_for
from .bus.history import MAX_RECENT, recent_results
from .bus.taskctl import TaskControl
from .config import SwarmConfig, load_config
from .errors import ConfigError, SwarmNotRunning, TaskTimeout
from .kinds import Roster
from .swarm.state import read_state
from .tracing.spans import SpanKind, span

__all__ = ["Swarm", "SwarmStatus", "connect", "resolve_servers", "served_kinds"]


class SwarmStatus(msgspec.Struct, frozen=True):
    swarm: str
    url: str
    agents: list[AgentStatus]
    tasks_queued: int
    results_stored: int


def served_kinds(config: SwarmConfig) -> set[str] | None:
    """The task kinds the agents of `config` consume (`*` for a wildcard handler), or None when
    an agent class cannot be loaded here (then nobody can say a kind is unserved)."""
    try:
        roster = Roster.of(config)
    except ConfigError:
        return None
    return {k for kind in roster.values() for h in kind.handlers for k in h.kinds}


def resolve_servers(config: SwarmConfig) -> list[str]:
    """The NATS URLs of a swarm: its state file for an embedded server, else the config's list."""
    if not config.nats.embedded:
        return config.nats.servers
    state = read_state(config.data_path)
    if state is None:
        raise SwarmNotRunning(f"swarm {config.swarm!r} is not running (no live supervisor for "
                              f"{config.data_path}); start it with `reverie up {config.source}`")
    return [state.url]


log = logging.getLogger("reverie.client")


class Swarm:
    """A connected client of one swarm."""

    def __init__(self, bus: Bus, config: SwarmConfig) -> None:
        self.bus = bus
        self.config = config
        self._results_sub: Subscription | None = None
        self._waiters: dict[str, asyncio.Future[Result]] = {}
        self._codec: Codec[Result] = Codec(Result, max_bytes=config.max_message_bytes, max_depth=None)
        self._taskctl: TaskControl | None = None
        self._resyncing: asyncio.Task[None] | None = None
        self._task_infos = Answers(TaskInfo, max_bytes=config.max_message_bytes)
        self._task_lists = Answers(TaskList, max_bytes=config.max_message_bytes)
        self._statuses = Answers(AgentStatus, max_bytes=config.max_message_bytes)
        self._events: Codec[TaskProgress | TaskInfo] = Codec(TaskProgress | TaskInfo,
                                                             max_bytes=config.max_message_bytes, max_depth=None)

    async def publish(self, task: Task) -> str:
        """Queue `task` durably and return its id (publishing the same id twice queues it once).
        Raises `InvalidTaskId`, `InvalidTaskKind`, and `TaskTooLarge` before sending a task
        over the swarm's message size limit (`Bus.submit` checks them)."""
        with _submit_span(task):
            await self.bus.submit(task)
        return task.id

    async def submit(self, input: Any, *, kind: str = "plan", budget: Budget | None = None,
                     task_id: str | None = None,
                     timeout: float = 300.0,  # noqa: ASYNC109 - public API: users call it; TaskTimeout names it
                     progress: Callable[[TaskProgress], object] | None = None) -> Result:
        """Publish a task and wait for its result; a task id that finished before is answered
        with its stored result at once (nothing is queued again for it). `progress` is called
        with each round as the dreamer judges it (best effort: a dropped event skips a round)."""
        task = Task(id=task_id or new_id(), kind=kind, input=input, budget=budget)
        waiter = await self._watch(task.id)
        events = await self._follow(task.id, progress) if progress is not None else None
        try:
            with _submit_span(task) as s:  # the task's trace: from publishing to its result
                await self.bus.submit(task)
                if task_id is not None and not waiter.done():
                    _settle(waiter, await self.bus.get_result(task.id))
                try:
                    async with asyncio.timeout(timeout):
                        result = await self._wait(task.id, waiter)
                except TimeoutError:
                    raise TaskTimeout(task.id, timeout) from None
                s.set_attribute("reverie.result.status", result.status.value)
                return result
        finally:
            if events is not None:
                await events.unsubscribe()

    async def _follow(self, task_id: str, progress: Callable[[TaskProgress], object]) -> Subscription:
        async def on_event(msg: Msg) -> None:
            try:
                event = self._events.decode(msg.data)
            except ProtocolError:
                return  # not ours to judge: the dreamer's, or a stranger's
            if isinstance(event, TaskProgress):
                progress(event)

        return await self.bus.nc.subscribe(self.bus.subjects.rel(f"events.task.{task_id}"), cb=on_event)

    async def submit_many(self, tasks: Sequence[Task], *,
                          timeout: float = 300.0,  # noqa: ASYNC109 - public API: as `submit`
                          window: int = 500) -> list[Result]:
        """Publish many tasks (up to `window` publishes in flight) and wait for every result,
        returned in the order of `tasks`."""
        waiters = [await self._watch(t.id) for t in tasks]
        for i in range(0, len(tasks), window):
            await asyncio.gather(*(self.publish(t) for t in tasks[i:i + window]))
        waiting = list(zip(tasks, waiters, strict=True))
        try:
            async with asyncio.timeout(timeout):
                return list(await asyncio.gather(*(self._wait(t.id, w) for t, w in waiting)))
        except TimeoutError:
            late = next((t.id for t, w in waiting if not w.done()), tasks[0].id)
            raise TaskTimeout(late, timeout) from None

    async def result(self, task_id: str, *,
                     timeout: float = 300.0) -> Result:  # noqa: ASYNC109 - public API: as `submit`
        """Wait for the result of a task published earlier (or already finished)."""
        waiter = await self._watch(task_id)
        _settle(waiter, await self.bus.get_result(task_id))
        try:
            async with asyncio.timeout(timeout):
                return await self._wait(task_id, waiter)
        except TimeoutError:
            raise TaskTimeout(task_id, timeout) from None

    async def _watch(self, task_id: str) -> asyncio.Future[Result]:
        if self._results_sub is None:
            self._results_sub = await self.bus.nc.subscribe(self.bus.subjects.all_results,
                                                            cb=self._on_result,
                                                            pending_msgs_limit=1_000_000)
        waiter = self._waiters.get(task_id)
        if waiter is None:
            waiter = self._waiters[task_id] = asyncio.get_running_loop().create_future()
        return waiter

    async def _wait(self, task_id: str, waiter: asyncio.Future[Result]) -> Result:
        """The result (shielded: a caller's timeout leaves the waiter for a later call)."""
        try:
            return await asyncio.shield(waiter)
        finally:
            if waiter.done():
                self._waiters.pop(task_id, None)

    def resync(self) -> None:
        """After a reconnect: results published while this client was away from the bus never
        reach its subscription, so each task still awaited is looked up in the results stream."""
        if self._resyncing is None or self._resyncing.done():
            self._resyncing = asyncio.create_task(self._resync(), name="client-resync")

    async def _resync(self) -> None:
        for task_id, waiter in list(self._waiters.items()):
            if waiter.done():
                continue
            try:
                _settle(waiter, await self.bus.get_result(task_id))
            except (nats.errors.Error, TimeoutError) as exc:  # gone again: the next reconnect tries again
                log.warning("looking up results after a reconnect failed: %s", exc)
                return

    async def stop_resync(self) -> None:
        if self._resyncing is not None:
            self._resyncing.cancel()
            await asyncio.gather(self._resyncing, return_exceptions=True)

    async def _on_result(self, msg: Msg) -> None:
        waiter = self._waiters.get(msg.subject.rpartition(".")[2])
        if waiter is None or waiter.done():
            return
        try:
            waiter.set_result(self._codec.decode(msg.data))
        except ProtocolError as exc:
            waiter.set_exception(exc)

    # ------------------------------------------------------------------ task control

    async def pause(self, task_id: str) -> None:
        """Ask the dreamer to pause `task_id` after its current round (it checkpoints and parks
        the task; nothing is lost). Pausing a task that has not started holds it at round 1."""
        await (await self._control()).pause(task_id)

    async def cancel(self, task_id: str) -> bool:
        """Ask for `task_id` to end `cancelled`: after its current round if it is dreaming, before
        any round if it is queued, at once if it is paused (it is queued again for that). Returns
        True if it had been parked. Its `cancelled` Result comes as any result does (`result`)."""
        return await (await self._control()).cancel(task_id)

    async def resume(self, task_id: str) -> bool:
        """Clear a pause; a parked task is queued again and resumes at its next round.
        Returns True if the task had been parked."""
        return await (await self._control()).resume(task_id)

    async def tasks(self, state: TaskState | None = None, *, limit: int = MAX_RECENT,
                    timeout: float = 0.5) -> list[TaskInfo]:  # noqa: ASYNC109 - public API: a reply window
        """The swarm's tasks (with `state`, only those): queued (in the task queue, no dreamer on
        it), running and paused (the dreamers' checkpoints), done (the newest `limit` results)."""
        found: dict[str, TaskInfo] = {}
        if state in (None, TaskState.DONE):
            found.update({r.task_id: TaskInfo.of_result(r) for _, r in await recent_results(self.bus, limit)})
        held: dict[str, TaskInfo] = {}
        if state in (None, TaskState.RUNNING, TaskState.PAUSED, TaskState.QUEUED):
            replies = await self.bus.request_many(self.bus.subjects.rel("ctl.task.list"), TaskListQuery(),
                                                  expect=10_000, timeout=timeout)
            for listing in self._task_lists.values(replies):
                held.update({i.task_id: i for i in listing.tasks if i.task_id not in found})
        if state in (None, TaskState.RUNNING, TaskState.PAUSED):
            found.update({k: v for k, v in held.items() if state is None or v.state is state})
        if state in (None, TaskState.QUEUED):
            for task in await self._queued(limit):
                if task.id not in found and task.id not in held:
                    found[task.id] = TaskInfo(task_id=task.id, state=TaskState.QUEUED)
        return list(found.values())

    async def _queued(self, limit: int) -> list[Task]:
        """The tasks in the task queue (its messages stay until a result is stored), oldest first."""
        s = self.bus.subjects
        codec: Codec[Task] = Codec(Task, max_bytes=self.config.max_message_bytes)
        state = (await self.bus.js.stream_info(s.tasks_stream)).state
        out: list[Task] = []
        seq = state.first_seq
        while state.messages and seq <= state.last_seq and len(out) < limit:
            try:
                raw = await self.bus.js.get_msg(s.tasks_stream, seq=seq, subject=s.all_tasks, next=True)
            except nats.js.errors.NotFoundError:
                break
            if raw.seq is None:
                break
            seq = raw.seq + 1
            try:
                out.append(codec.decode(raw.data or b""))
            except ProtocolError:
                continue
        return out

    async def task_info(self, task_id: str, *,
                        timeout: float = 0.5) -> TaskInfo:  # noqa: ASYNC109 - public API: a reply window
        """What the swarm knows of a task: its result if stored, else the dreamers' checkpoint."""
        result = await self.bus.get_result(task_id)
        control = await self._control()
        if await control.parked(task_id) is not None:
            paused = True
        else:
            paused = await control.pause_requested(task_id)
        replies = await self.bus.request_many(self.bus.subjects.task_show, TaskQuery(task_id=task_id),
                                              expect=10_000, timeout=timeout)
        best = TaskInfo(task_id=task_id, state=TaskState.UNKNOWN)
        for info in self._task_infos.values(replies):
            if info.state is not TaskState.UNKNOWN or not best.agent:
                if best.state is TaskState.UNKNOWN or info.rounds > best.rounds:
                    best = info
        if result is not None:
            best = msgspec.structs.replace(best, state=TaskState.DONE, rounds=max(best.rounds, result.rounds))
        elif paused:
            best = msgspec.structs.replace(best, state=TaskState.PAUSED)
        return best

    async def _control(self) -> TaskControl:
        if self._taskctl is None:
            self._taskctl = await TaskControl.open(self.bus, replicas=self.config.streams.replicas)
        return self._taskctl

    async def status(self, *,
                     timeout: float = 0.5) -> SwarmStatus:  # noqa: ASYNC109 - public API: a reply window
        """Every live agent's status (those that answer within `timeout`) and task counts."""
        replies = await self.bus.request_many(self.bus.subjects.status, StatusRequest(),
                                              expect=10_000, timeout=timeout)
        agents = self._statuses.values(replies)
        agents.sort(key=lambda a: (a.agent, a.replica))
        s = self.bus.subjects
        tasks = await self.bus.js.stream_info(s.tasks_stream)
        results = await self.bus.js.stream_info(s.results_stream)
        return SwarmStatus(swarm=self.config.swarm, url=self.bus.nc.connected_url.geturl()
                           if self.bus.nc.connected_url else "", agents=agents,
                           tasks_queued=tasks.state.messages, results_stored=results.state.messages)


@contextlib.asynccontextmanager
async def connect(config: SwarmConfig | str | Path, *,
                  servers: list[str] | None = None) -> AsyncIterator[Swarm]:
    """Connect to the swarm a deploy config describes (it must be running: `reverie up`).

    Authenticates as `_client` with its seed (`<data_dir>/keys/nats/_client.nk`, or
    `nats.nkey_seed_dir`) when the swarm's bus requires credentials."""
    if not isinstance(config, SwarmConfig):
        config = load_config(config, check_agents=False)
    urls = servers or resolve_servers(config)
    seed = seed_for(config, CLIENT)
    if seed is not None and config.nats.embedded and not seed.exists():
        seed = None  # never started with auth (`reverie up` creates the seeds)
    clients: list[Swarm] = []

    async def reconnected() -> None:
        for swarm in clients:
            swarm.resync()

    try:
        bus = await connect_bus(config, CLIENT, urls, name=f"{config.swarm}.client", seed=seed,
                                on_reconnect=reconnected)
    except (TimeoutError, nats.errors.NoServersError, OSError) as exc:
        raise SwarmNotRunning(f"cannot reach NATS for swarm {config.swarm!r} at {', '.join(urls)}: {exc}") from None
    async with bus:
        await bus.ensure_streams(config.streams)
        clients.append(Swarm(bus, config))
        try:
            yield clients[0]
        finally:
            await clients[0].stop_resync()


def _settle(waiter: asyncio.Future[Result], stored: Result | None) -> None:
    """Answer `waiter` with a result found stored, unless the subscription answered it first."""
    if stored is not None and not waiter.done():
        waiter.set_result(stored)


def _submit_span(task: Task) -> AbstractContextManager[Span]:
    """The client's span of a task; its trace context travels in the task message's headers."""
    return span(f"submit {task.kind}", kind=SpanKind.PRODUCER, attributes={
        "reverie.task.id": task.id, "reverie.task.kind": task.kind, "messaging.system": "nats",
        "messaging.operation.type": "send"})
