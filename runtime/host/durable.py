"""Durable tasks: the JetStream consumer of an agent's task handler, and the one place a Result is stored.

A task is acked only once its result is stored (`ResultStore`, which retries through a server
outage); a redelivered task whose result is already stored is acked without running twice; a
handler that fails is retried with backoff until `MAX_DELIVER`, then its task gets a failed
Result; a task that cannot be decoded is terminated and reported, never redelivered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from reverie.protocol import Codec, Error, ProtocolError, Result, ResultStatus, Task, check_task_id

from ..agent import BoundHandler
from ..bus.bus import Bus
from ..bus.retry import retrying
from ..logs import BurstLog
from .dispatch import Dispatcher
from .traced import handler_span, note_reply

__all__ = ["ACK_WAIT", "FETCH_TIMEOUT", "MAX_DELIVER", "STORE_PATIENCE", "DurableConsumer", "ResultStore"]

ACK_WAIT = 15.0
MAX_DELIVER = 5
FETCH_TIMEOUT = 0.5
STORE_PATIENCE = 20.0
"""Seconds a result store retries through an outage: redelivery would cost a whole ack_wait."""
STORE_RETRY = 0.25


class ResultStore:
    """Stores results in the swarm's results bucket, retrying while the client reconnects."""

    def __init__(self, bus: Bus, burst: BurstLog, *, patience: float = STORE_PATIENCE) -> None:
        self.bus = bus
        self.patience = patience
        self._burst = burst

    async def store(self, result: Result) -> bool:
        """Store `result`, retrying through a server outage for up to `patience` seconds in all
        (the bus retries leader elections itself, within what is left of them; this loop also
        waits out what it does not, such as a full disk); False (logged) when it could not be stored."""
        deadline = time.monotonic() + self.patience
        while True:
            try:
                await self.bus.store_result(result, patience=max(deadline - time.monotonic(), 0.0))
                return True
            except (nats.errors.Error, TimeoutError) as exc:
                if time.monotonic() > deadline or self.bus.nc.is_closed:
                    self._burst.warning("store", "could not store result of %s: %s", result.task_id, exc)
                    return False
                await asyncio.sleep(STORE_RETRY)

    async def stored(self, task_id: str) -> bool:
        """A result of `task_id` is stored already (False when that cannot be told now)."""
        try:
            return await self.bus.get_result(task_id) is not None
        except (nats.errors.Error, TimeoutError, ProtocolError):
            return False


class DurableConsumer:
    """Pulls the tasks of one durable handler, at most `limit` at a time, until `stopping`."""

    def __init__(self, dispatch: Dispatcher, h: BoundHandler, results: ResultStore, *,
                 stopping: asyncio.Event) -> None:
        self.dispatch = dispatch
        self.h = h
        self.results = results
        self._stopping = stopping
        self._bus = dispatch.bus
        self._name = dispatch.spec.name
        self._counters = dispatch.counters
        self._codec: Codec[Task] = Codec(Task, max_bytes=dispatch.config.max_message_bytes)

    async def run(self, started: asyncio.Future[None]) -> None:
        """Create the durable consumer (then `started` is set: tasks published from now on
        reach this agent) and serve its tasks until stopping."""
        limit = self.dispatch.limit(self.h)
        try:
            psub = await self._subscribe(ConsumerConfig(ack_wait=ACK_WAIT, max_deliver=MAX_DELIVER,
                                                        max_ack_pending=max(limit * 4, 256)))
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await self._fetch_loop(psub, limit)
        finally:
            # a pull subscription holds fetched-but-unread messages that a connection drain
            # would wait on forever; in-flight tasks still ack through their own reply subject
            try:
                await psub.unsubscribe()
            except nats.errors.Error:
                pass

    async def _subscribe(self, config: ConsumerConfig) -> JetStreamContext.PullSubscription:
        """Pull from the agent's durable consumer, filtered to the handler's kinds. A consumer
        left by an earlier run with other kinds (the dreamer learnt a domain) is updated first:
        JetStream keeps a durable's filter, and the new kinds would never arrive."""
        js, stream = self._bus.js, self._bus.subjects.tasks_stream
        subjects = [self._bus.subjects.rel(p) for p in self.h.spec.patterns]
        if len(subjects) > 1:
            config.filter_subjects = subjects
        else:
            config.filter_subject = subjects[0]
        what = f"consumer {self._name} of {stream}"
        try:
            info = await retrying(f"looking up {what}", lambda: js.consumer_info(stream, self._name))
        except nats.js.errors.NotFoundError:
            info = None
        if info is not None and sorted(info.config.filter_subjects or [info.config.filter_subject or ""]) \
                != sorted(subjects):
            config.durable_name = config.name = self._name
            # a create with the durable's name updates it
            await retrying(f"updating {what}", lambda: js.add_consumer(stream, config=config))
        return await retrying(f"binding {what}", lambda: js.pull_subscribe(
            subjects[0], durable=self._name, stream=stream, config=config))

    async def _fetch_loop(self, psub: JetStreamContext.PullSubscription, limit: int) -> None:
        capacity = asyncio.Event()
        capacity.set()
        running: set[asyncio.Task[None]] = set()
        inflight = self.dispatch.inflight

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            inflight.discard(task)
            capacity.set()

        while not self._stopping.is_set():
            free = limit - len(running)
            if free <= 0:
                capacity.clear()
                await capacity.wait()
                continue
            try:
                msgs = await psub.fetch(batch=free, timeout=FETCH_TIMEOUT)
            except TimeoutError:  # nats-py raises its own (a TimeoutError) and, under load, asyncio's
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
                    nats.errors.DrainTimeoutError):
                await asyncio.sleep(FETCH_TIMEOUT)  # the client is reconnecting; poll again shortly
                continue
            except nats.errors.Error as exc:
                self.dispatch.burst.warning("fetch", "fetching tasks failed: %s", exc)
                await asyncio.sleep(FETCH_TIMEOUT)
                continue
            for msg in msgs:
                task = asyncio.create_task(self._serve_task(msg))
                running.add(task)
                inflight.add(task)
                task.add_done_callback(done)

    async def _serve_task(self, msg: Msg) -> None:
        h = self.h
        self._counters["received"] += 1
        try:
            task = self._codec.decode(msg.data)
            check_task_id(task.id)  # publishers other than our client check nothing
        except ProtocolError as exc:
            await self._refuse_task(msg, exc)
            return
        if msg.metadata.num_delivered > 1 and await self.results.stored(task.id):
            self._counters["duplicate"] += 1
            await _quietly(msg.ack())  # redelivered after its result was stored: do nothing twice
            return
        ticker = asyncio.create_task(self._keep_alive(msg))
        try:
            with handler_span(self._name, self.dispatch.ctx.replica, h, msg.headers, task) as s:
                result = await self.dispatch.call(h, task)
                note_reply(s, result)
        except asyncio.CancelledError:
            await _quietly(msg.nak())  # stopping: hand the task back for prompt redelivery
            raise
        except Exception as exc:
            self.dispatch.count_handler_error(h, exc)
            if msg.metadata.num_delivered < MAX_DELIVER:
                await msg.nak(delay=min(2.0 ** msg.metadata.num_delivered, 30.0))
                return
            result = Result(task_id=task.id, status=ResultStatus.FAILED, agent=self._name,
                            reason=f"handler failed {MAX_DELIVER} times; last: {type(exc).__name__}: {exc}")
        finally:
            ticker.cancel()
        if result is not None:
            if not isinstance(result, Result) or result.task_id != task.id:
                result = self._misreturned(task, result)
            if not await self.results.store(result):
                await _quietly(msg.nak(delay=1.0))
                return
        self._counters["handled"] += 1
        await _quietly(msg.ack())

    async def _refuse_task(self, msg: Msg, exc: ProtocolError) -> None:
        """Count, terminate and report a task that cannot be worked on: never redeliver it."""
        self.dispatch.count_bad(msg.subject, exc)
        await _quietly(msg.term())
        await _quietly(self._bus.publish(self._bus.subjects.rel("events.error"),
                                         Error(code=exc.reason, message=exc.detail, subject=msg.subject)))

    def _misreturned(self, task: Task, returned: Any) -> Result:
        """The failed result standing in for what a handler returned instead of this task's Result."""
        what = (f"the result of task {returned.task_id!r}" if isinstance(returned, Result)
                else f"{type(returned).__name__}, not a Result")
        self.dispatch.count_handler_error(self.h, TypeError(f"{self.h.name} returned {what}; a task handler "
                                                            "returns the task's Result or None"))
        return Result(task_id=task.id, status=ResultStatus.FAILED, agent=self._name,
                      reason=f"handler returned {what}")

    async def _keep_alive(self, msg: Msg) -> None:
        """Tell JetStream a long task is still being worked on, so it is not redelivered."""
        while True:
            await asyncio.sleep(ACK_WAIT / 3)
            await _quietly(msg.in_progress())


async def _quietly(op: Awaitable[object]) -> None:
    try:
        await op
    except (nats.errors.Error, TimeoutError):
        pass
