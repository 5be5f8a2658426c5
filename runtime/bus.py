"""The bus: one nats-py connection, the swarm's JetStream streams, and fan-out requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from reverie.protocol import Codec, Result, Subjects, Task, encode

log = logging.getLogger("reverie.bus")

RESULTS_MAX_AGE = 7 * 24 * 3600.0
DEDUPE_WINDOW = 120.0


class _Gather:
    __slots__ = ("replies", "expect", "done")

    def __init__(self, expect: int) -> None:
        self.replies: list[bytes] = []
        self.expect = expect
        self.done = asyncio.Event()


class Bus:
    """A connected bus for one swarm. Build it with `await Bus.connect(...)`; close with `close()`."""

    def __init__(self, nc: Client, subjects: Subjects, *, max_message_bytes: int,
                 closing: asyncio.Event | None = None) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.subjects = subjects
        self.max_message_bytes = max_message_bytes
        self._result_codec: Codec[Result] = Codec(Result, max_bytes=max_message_bytes)
        self._inbox_prefix = ""
        self._inbox_sub: Subscription | None = None
        self._gathers: dict[str, _Gather] = {}
        self._next_token = 0
        self._closing = closing or asyncio.Event()

    @classmethod
    async def connect(cls, servers: list[str], *, swarm: str, name: str,
                      max_message_bytes: int = 512 * 1024, connect_timeout: float = 5.0,
                      on_reconnect: Callable[[], Awaitable[None]] | None = None) -> Bus:
        """Connect with reconnects forever and a short ping cycle, so a dead server is
        noticed within seconds rather than minutes."""

        async def error_cb(exc: Exception) -> None:
            log.warning("nats: %s", exc)

        closing = asyncio.Event()

        async def disconnected_cb() -> None:
            if not closing.is_set():
                log.warning("disconnected from nats")

        async def reconnected_cb() -> None:
            log.info("reconnected to nats")
            if on_reconnect is not None:
                await on_reconnect()

        nc = await nats.connect(
            servers=servers, name=name, connect_timeout=connect_timeout,
            allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            ping_interval=5, max_outstanding_pings=2, error_cb=error_cb,
            disconnected_cb=disconnected_cb, reconnected_cb=reconnected_cb,
            pending_size=64 * 1024 * 1024,
        )
        return cls(nc, Subjects(swarm), max_message_bytes=max_message_bytes, closing=closing)

    async def close(self) -> None:
        """Drain: finish delivering what subscriptions hold, flush, then close."""
        if self.nc.is_closed:
            return
        self._closing.set()
        try:
            await self.nc.drain()
        except (nats.errors.ConnectionClosedError, nats.errors.FlushTimeoutError, asyncio.TimeoutError):
            await self.nc.close()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # ------------------------------------------------------------------ streams

    async def ensure_streams(self) -> None:
        """Create (or update) the task and result streams. Idempotent."""
        s = self.subjects
        await self._ensure(StreamConfig(
            name=s.tasks_stream, subjects=[s.all_tasks], retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE, duplicate_window=DEDUPE_WINDOW,
            max_msg_size=self.max_message_bytes,
        ))
        await self._ensure(StreamConfig(
            name=s.results_stream, subjects=[s.all_results], retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE, max_msgs_per_subject=1, max_age=RESULTS_MAX_AGE,
            duplicate_window=DEDUPE_WINDOW,
        ))

    async def _ensure(self, config: StreamConfig) -> None:
        try:
            await self.js.add_stream(config=config)
        except nats.js.errors.BadRequestError:
            await self.js.update_stream(config=config)

    # ------------------------------------------------------------------ publishing

    async def publish(self, subject: str, message: msgspec.Struct, *, reply: str = "") -> None:
        await self.nc.publish(subject, encode(message), reply=reply)

    async def submit(self, task: Task, *, msg_id: str | None = None) -> bool:
        """Queue a task durably. Returns False when JetStream saw this message id (default:
        the task id) within the dedupe window already."""
        ack = await self.js.publish(self.subjects.task(task.kind), encode(task),
                                    headers={"Nats-Msg-Id": msg_id or task.id})
        return not ack.duplicate

    async def store_result(self, result: Result) -> None:
        """Store a result durably (one per task: the results stream keeps the last per subject)."""
        await self.js.publish(self.subjects.result(result.task_id), encode(result),
                              headers={"Nats-Msg-Id": f"result:{result.task_id}"})

    async def get_result(self, task_id: str) -> Result | None:
        try:
            raw = await self.js.get_last_msg(self.subjects.results_stream,
                                             self.subjects.result(task_id))
        except nats.js.errors.NotFoundError:
            return None
        assert raw.data is not None
        return self._result_codec.decode(raw.data)

    # ------------------------------------------------------------------ fan-out requests

    async def request_many(self, subject: str, message: msgspec.Struct, *, expect: int,
                           timeout: float) -> list[bytes]:
        """Publish once and collect up to `expect` replies until `timeout`.

        All requests of this bus share one wildcard inbox subscription (as nats-py muxes
        `request`), so a request costs one publish and no subscribe round trip.
        """
        if self._inbox_sub is None:
            self._inbox_prefix = self.nc.new_inbox()
            self._inbox_sub = await self.nc.subscribe(f"{self._inbox_prefix}.*", cb=self._on_reply)
        self._next_token += 1
        token = str(self._next_token)
        gather = _Gather(expect)
        self._gathers[token] = gather
        try:
            await self.nc.publish(subject, encode(message), reply=f"{self._inbox_prefix}.{token}")
            try:
                await asyncio.wait_for(gather.done.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            return gather.replies
        finally:
            del self._gathers[token]

    async def _on_reply(self, msg: Msg) -> None:
        gather = self._gathers.get(msg.subject.rpartition(".")[2])
        if gather is None:
            return  # a late reply to a request that already gave up
        gather.replies.append(msg.data)
        if len(gather.replies) >= gather.expect:
            gather.done.set()
