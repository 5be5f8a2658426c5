"""The client side: `async with connect(config) as swarm: result = await swarm.submit(...)`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from reverie.protocol import (
    AgentStatus,
    Budget,
    Codec,
    Error,
    ProtocolError,
    Result,
    ReverieError,
    StatusRequest,
    Task,
    TaskInfo,
    TaskQuery,
    TaskState,
    check_task_id,
    new_id,
    valid_token,
)

from .bus import Bus
from .bus.credentials import CLIENT, connect_bus, seed_for
from .bus.taskctl import TaskControl
from .config import SwarmConfig, load_config
from .errors import ConfigError, SwarmNotRunning, TaskTimeout
from .kinds import Roster
from .swarm.state import read_state


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
    return {h.spec.pattern.split(".", 1)[1] for kind in roster.values() for h in kind.handlers if h.durable}


def resolve_servers(config: SwarmConfig) -> list[str]:
    """The NATS URLs of a swarm: its state file for an embedded server, else the config's list."""
    if not config.nats.embedded:
        return config.nats.servers
    state = read_state(config.data_path)
    if state is None:
        raise SwarmNotRunning(f"swarm {config.swarm!r} is not running (no live supervisor for "
                              f"{config.data_path}); start it with `reverie up {config.source}`")
    return [state.url]


class Swarm:
    """A connected client of one swarm."""

    def __init__(self, bus: Bus, config: SwarmConfig) -> None:
        self.bus = bus
        self.config = config
        self._results_sub: Subscription | None = None
        self._waiters: dict[str, asyncio.Future[Result]] = {}
        self._codec: Codec[Result] = Codec(Result, max_bytes=config.max_message_bytes, max_depth=None)
        self._taskctl: TaskControl | None = None

    async def publish(self, task: Task) -> str:
        """Queue `task` durably and return its id (publishing the same id twice queues it once).
        Raises `TaskTooLarge` before sending a task over the swarm's message size limit."""
        check_task_id(task.id)
        if not valid_token(task.kind):
            raise ReverieError(f"task kind {task.kind!r} must be letters, digits, '-' or '_'")
        await self.bus.submit(task)
        return task.id

    async def submit(self, input: Any, *, kind: str = "plan", budget: Budget | None = None,
                     task_id: str | None = None, timeout: float = 300.0) -> Result:
        """Publish a task and wait for its result; a task id that finished before is answered
        with its stored result at once (nothing is queued again for it)."""
        task = Task(id=task_id or new_id(), kind=kind, input=input, budget=budget)
        waiter = await self._watch(task.id)
        await self.publish(task)
        if task_id is not None and not waiter.done():
            stored = await self.bus.get_result(task.id)
            if stored is not None and not waiter.done():
                waiter.set_result(stored)
        return await self._wait(task.id, waiter, timeout)

    async def submit_many(self, tasks: Sequence[Task], *, timeout: float = 300.0,
                          window: int = 500) -> list[Result]:
        """Publish many tasks (up to `window` publishes in flight) and wait for every result,
        returned in the order of `tasks`."""
        waiters = [await self._watch(t.id) for t in tasks]
        for i in range(0, len(tasks), window):
            await asyncio.gather(*(self.publish(t) for t in tasks[i:i + window]))
        return list(await asyncio.gather(*(self._wait(t.id, w, timeout) for t, w in zip(tasks, waiters))))

    async def result(self, task_id: str, *, timeout: float = 300.0) -> Result:
        """Wait for the result of a task published earlier (or already finished)."""
        waiter = await self._watch(task_id)
        stored = await self.bus.get_result(task_id)
        if stored is not None and not waiter.done():
            waiter.set_result(stored)
        return await self._wait(task_id, waiter, timeout)

    async def _watch(self, task_id: str) -> asyncio.Future[Result]:
        if self._results_sub is None:
            self._results_sub = await self.bus.nc.subscribe(self.bus.subjects.all_results,
                                                            cb=self._on_result,
                                                            pending_msgs_limit=1_000_000)
        waiter = self._waiters.get(task_id)
        if waiter is None:
            waiter = self._waiters[task_id] = asyncio.get_running_loop().create_future()
        return waiter

    async def _wait(self, task_id: str, waiter: asyncio.Future[Result], timeout: float) -> Result:
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            raise TaskTimeout(task_id, timeout) from None
        finally:
            if waiter.done():
                self._waiters.pop(task_id, None)

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

    async def resume(self, task_id: str) -> bool:
        """Clear a pause; a parked task is queued again and resumes at its next round.
        Returns True if the task had been parked."""
        return await (await self._control()).resume(task_id)

    async def task_info(self, task_id: str, *, timeout: float = 0.5) -> TaskInfo:
        """What the swarm knows of a task: its result if stored, else the dreamers' checkpoint."""
        result = await self.bus.get_result(task_id)
        control = await self._control()
        if await control.parked(task_id) is not None:
            paused = True
        else:
            paused = await control.pause_requested(task_id)
        replies = await self.bus.request_many(self.bus.subjects.task_show, TaskQuery(task_id=task_id),
                                              expect=10_000, timeout=timeout)
        codec: Codec[TaskInfo | Error] = Codec(TaskInfo | Error)
        best = TaskInfo(task_id=task_id, state=TaskState.UNKNOWN)
        for reply in replies:
            with contextlib.suppress(ProtocolError):
                info = codec.decode(reply.data)
                if isinstance(info, TaskInfo) and (info.state is not TaskState.UNKNOWN or not best.agent):
                    if best.state is TaskState.UNKNOWN or info.rounds > best.rounds:
                        best = info
        if result is not None:
            best = msgspec.structs.replace(best, state=TaskState.DONE, rounds=max(best.rounds, result.rounds))
        elif paused:
            best = msgspec.structs.replace(best, state=TaskState.PAUSED)
        return best

    async def _control(self) -> TaskControl:
        if self._taskctl is None:
            self._taskctl = await TaskControl.open(self.bus)
        return self._taskctl

    async def status(self, *, timeout: float = 0.5) -> SwarmStatus:
        """Every live agent's status (those that answer within `timeout`) and task counts."""
        replies = await self.bus.request_many(self.bus.subjects.status, StatusRequest(),
                                              expect=10_000, timeout=timeout)
        codec: Codec[AgentStatus | Error] = Codec(AgentStatus | Error)
        agents: list[AgentStatus] = []
        for reply in replies:
            with contextlib.suppress(ProtocolError):
                decoded = codec.decode(reply.data)
                if isinstance(decoded, AgentStatus):
                    agents.append(decoded)
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
    try:
        bus = await connect_bus(config, CLIENT, urls, name=f"{config.swarm}.client", seed=seed)
    except (nats.errors.NoServersError, OSError, asyncio.TimeoutError) as exc:
        raise SwarmNotRunning(f"cannot reach NATS for swarm {config.swarm!r} at {', '.join(urls)}: {exc}") from None
    async with bus:
        await bus.ensure_streams(config.streams)
        yield Swarm(bus, config)
