"""One codec for the bus: msgpack via msgspec, with a size limit and typed errors."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from .errors import OversizedMessage, ProtocolError
from .messages import PROTOCOL_VERSION

DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024
"""Below the NATS default `max_payload` (1 MiB) so our limit, not the server's, answers first."""

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


class Codec(Generic[T]):
    """A reusable decoder for one message type (or tagged union of types)."""

    def __init__(self, type_: Any, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.type = type_
        self.max_bytes = max_bytes
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(type_)

    def decode(self, data: bytes) -> T:
        """Decode `data`, raising `ProtocolError` (or `OversizedMessage`) on anything off."""
        if len(data) > self.max_bytes:
            raise OversizedMessage(len(data), self.max_bytes)
        try:
            message = self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise ProtocolError("type", str(exc), size=len(data)) from None
        except msgspec.DecodeError as exc:
            raise ProtocolError("malformed", str(exc), size=len(data)) from None
        version = getattr(message, "v", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                "version", f"protocol version {version} is not supported (this is {PROTOCOL_VERSION})"
            )
        return message

    def encode(self, message: msgspec.Struct) -> bytes:
        return _encoder.encode(message)
