"""Serving requests on the bus: decode each one into its typed message, or answer the sender
a typed `Error`, and send replies. The one implementation for every core-NATS responder of
an agent process (its handlers, its status, its gossip node). `answers.Answers` is the
requester's side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
import nats.errors
from nats.aio.msg import Msg

from reverie.protocol import Codec, Error, ProtocolError, encode

from ..logs import BurstLog
from .bus import Bus

__all__ = ["Responder"]

_T = TypeVar("_T")


class Responder(Generic[_T]):
    """Decodes requests of type `_T` arriving on `bus` and answers them.

    `on_bad(msg, exc)` counts and logs a request that does not decode (the sender, if it
    awaits a reply, gets `Error(code=exc.reason)`); `on_sent(n)` is told the size of every
    reply sent."""

    def __init__(self, bus: Bus, codec: Codec[_T], *, burst: BurstLog,
                 on_bad: Callable[[Msg, ProtocolError], None],
                 on_sent: Callable[[int], None] | None = None) -> None:
        self.bus = bus
        self.codec = codec
        self._burst = burst
        self._on_bad = on_bad
        self._on_sent = on_sent

    async def decode(self, msg: Msg) -> _T | None:
        """The request `msg` carries, or None once the sender got a typed `Error` for it."""
        try:
            return self.codec.decode(msg.data)
        except ProtocolError as exc:
            self._on_bad(msg, exc)
            await self.answer(msg, Error(code=exc.reason, message=exc.detail, subject=msg.subject))
            return None

    async def answer(self, msg: Msg, reply: msgspec.Struct) -> None:
        """Send `reply` to the sender of `msg`, if it awaits one. A fan-out request's inbox
        gets `<inbox>.<our name>` (see `Bus.reply_subject`): the reply names its sender."""
        if not msg.reply:
            return
        data = encode(reply)
        if self._on_sent is not None:
            self._on_sent(len(data))
        try:
            await self.bus.nc.publish(self.bus.reply_subject(msg.reply), data)
        except nats.errors.Error as exc:
            self._burst.warning("reply", "could not reply on %s: %s", msg.reply, exc)
