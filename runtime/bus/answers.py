"""Answers to a request that are the expected `T` or a typed `Error` (the responder could not
serve it): one decoder for both, and one place that keeps the `T`s of a fan-out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from reverie.protocol import DEFAULT_MAX_MESSAGE_BYTES, Codec, Error, ProtocolError

from .bus import Reply

__all__ = ["Answers"]

T = TypeVar("T")


class Answers(Generic[T]):
    """Decodes replies of type `T | Error`: `Answers(AgentStatus).values(replies)`."""

    def __init__(self, type_: type[T], *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.type = type_
        self._codec: Codec[T | Error] = Codec(type_ | Error, max_bytes=max_bytes)

    def decode(self, data: bytes) -> T | Error:
        """One reply; raises `ProtocolError` for bytes that are neither."""
        return self._codec.decode(data)

    def values(self, replies: Iterable[Reply]) -> list[T]:
        """The replies that are a `T`, in order; `Error`s and undecodable replies are dropped
        (a responder that cannot answer, or a malformed one, has nothing to say here)."""
        out: list[T] = []
        for reply in replies:
            try:
                decoded = self._codec.decode(reply.data)
            except ProtocolError:
                continue
            if not isinstance(decoded, Error):
                out.append(decoded)
        return out
