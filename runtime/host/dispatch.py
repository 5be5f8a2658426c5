"""Calling an agent's handlers: core-NATS subscriptions, their replies, and error accounting."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from reverie.protocol import Codec, Error, ProtocolError

from ..agent import Agent, BoundHandler, Context
from ..bus.bus import Bus
from ..bus.responder import Responder
from ..config import AgentSpec, SwarmConfig
from ..logs import BurstLog
from .traced import handler_span, note_reply

__all__ = ["Dispatcher"]

_T = TypeVar("_T")


class Dispatcher:
    """Calls one agent's handlers and counts what goes wrong; `subscribe` serves a core
    (non-durable) handler, replying when the request asked for a reply. Every task it or the
    durable consumer starts is in `inflight`, so the host can wait for them on stop."""

    def __init__(self, agent: Agent, ctx: Context, *, bus: Bus, config: SwarmConfig, spec: AgentSpec,
                 counters: Counter[str], log: logging.Logger) -> None:
        self.agent = agent
        self.ctx = ctx
        self.bus = bus
        self.config = config
        self.spec = spec
        self.counters = counters
        self.burst = BurstLog(log)
        self.inflight: set[asyncio.Task[Any]] = set()

    async def call(self, h: BoundHandler, message: Any) -> Any:
        if h.wants_ctx:
            return await h.func(self.agent, message, self.ctx)
        return await h.func(self.agent, message)

    def limit(self, h: BoundHandler) -> int:
        """How many messages of `h` run at once (the agent's spec overrides the handler's)."""
        return self.spec.concurrency or h.spec.concurrency

    # ------------------------------------------------------------------ accounting

    def count_bad(self, subject: str, exc: ProtocolError) -> None:
        self.counters["errors"] += 1
        self.counters[f"error.{exc.reason}"] += 1
        self.burst.warning(f"bad:{exc.reason}", "dropped a message on %s (%s): %s",
                           subject, exc.reason, exc.detail)

    def count_handler_error(self, h: BoundHandler, exc: BaseException) -> None:
        self.counters["errors"] += 1
        self.counters["error.handler"] += 1
        self.burst.warning(f"handler:{h.name}", "handler %s failed: %r", h.name, exc, exc_info=True)

    def responder(self, codec: Codec[_T]) -> Responder[_T]:
        """Decodes requests with `codec` (a bad one is counted, its sender told) and answers them."""
        return Responder(self.bus, codec, burst=self.burst, on_bad=self._bad_request)

    def _bad_request(self, msg: Msg, exc: ProtocolError) -> None:
        self.count_bad(msg.subject, exc)

    # ------------------------------------------------------------------ core subscriptions

    async def subscribe(self, h: BoundHandler) -> Subscription:
        """Serve handler `h` on its core subject, `limit(h)` messages at a time."""
        requests: Responder[Any] = self.responder(Codec(h.message_type, max_bytes=self.config.max_message_bytes))
        queue = self.spec.name if h.spec.queue == "" else (h.spec.queue or "")
        limit = self.limit(h)
        slots = asyncio.Semaphore(limit)

        async def on_msg(msg: Msg) -> None:
            if limit == 1:
                await self._serve(h, requests, msg)
                return
            await slots.acquire()  # backpressure: holds this subscription's delivery loop
            task = asyncio.create_task(self._serve(h, requests, msg))
            self.inflight.add(task)
            task.add_done_callback(release)

        def release(task: asyncio.Task[None]) -> None:
            self.inflight.discard(task)
            slots.release()

        return await self.bus.nc.subscribe(self.bus.subjects.rel(h.spec.pattern), queue=queue, cb=on_msg,
                                           pending_msgs_limit=1_000_000)

    async def _serve(self, h: BoundHandler, requests: Responder[Any], msg: Msg) -> None:
        self.counters["received"] += 1
        message = await requests.decode(msg)
        if message is None:  # its sender got a typed Error
            return
        try:
            with handler_span(self.spec.name, self.ctx.replica, h, msg.headers, message) as s:
                reply = await self.call(h, message)
                note_reply(s, reply)
        except Exception as exc:
            self.count_handler_error(h, exc)
            await requests.answer(msg, Error(code="handler", message=f"{type(exc).__name__}: {exc}",
                                             subject=msg.subject))
            return
        self.counters["handled"] += 1
        if reply is not None and msg.reply:
            if isinstance(reply, msgspec.Struct):
                await requests.answer(msg, reply)
            else:
                self.count_handler_error(h, TypeError(f"{h.name} returned {type(reply).__name__}, "
                                                      "not a reverie.protocol message"))
