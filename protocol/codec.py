"""One codec for the bus: msgpack via msgspec, with size and nesting limits and typed errors."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from .errors import NestingTooDeep, OversizedMessage, ProtocolError
from .messages import PROTOCOL_VERSION, SUPPORTED_VERSIONS

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_MESSAGE_BYTES", "Codec", "encode", "nesting_exceeds"]

DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024
"""Below the NATS default `max_payload` (1 MiB) so our limit, not the server's, answers first."""

DEFAULT_MAX_DEPTH = 128
"""Arrays and maps nested deeper than this are refused. msgspec recurses once per level and
raises `RecursionError` near Python's recursion limit (about 1,000 levels less the caller's
stack: 1 KB of bytes gets there); reverie's own messages nest about a dozen levels deep."""

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


class Codec(Generic[T]):
    """A reusable decoder for one message type (or tagged union of types)."""

    def __init__(self, type_: Any, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 max_depth: int | None = DEFAULT_MAX_DEPTH) -> None:
        """`max_depth` None skips the nesting pre-scan (a bomb still fails typed, through the
        `RecursionError` it causes): for large messages only agents write, such as results,
        where the scan would cost more than the decode."""
        self.type = type_
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(type_)

    def decode(self, data: bytes) -> T:
        """Decode `data`, raising `ProtocolError` (`OversizedMessage`, `NestingTooDeep`) on anything off."""
        if len(data) > self.max_bytes:
            raise OversizedMessage(len(data), self.max_bytes)
        if self.max_depth is not None and nesting_exceeds(data, self.max_depth):
            raise NestingTooDeep(self.max_depth, size=len(data))
        try:
            message = self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise ProtocolError("type", str(exc), size=len(data)) from None
        except msgspec.DecodeError as exc:
            raise ProtocolError("malformed", str(exc), size=len(data)) from None
        except RecursionError:  # unscanned, or within the limit but called from an already deep stack
            raise NestingTooDeep(self.max_depth or DEFAULT_MAX_DEPTH, size=len(data)) from None
        version = getattr(message, "v", PROTOCOL_VERSION)
        if version not in SUPPORTED_VERSIONS:
            raise ProtocolError(
                "version", f"protocol version {version} is not supported (this is {PROTOCOL_VERSION})"
            )
        return message

    def encode(self, message: msgspec.Struct) -> bytes:
        return _encoder.encode(message)


# ------------------------------------------------------------------ nesting depth

def _heads() -> list[tuple[int, int, int, int]]:
    """Per msgpack head byte: `(width, length, per, pad)`. The `width` bytes after the head
    hold the length (else the head fixes `length`); a container holds `length * per` items
    (`per` is 1 for an array, 2 for a map); anything else spans `length + pad` more bytes
    (`pad` is an ext's type byte)."""
    heads = [(0, 0, 0, 0)] * 256  # fixints, nil, bool, and the never-used 0xc1
    for b in range(0x80, 0x90):
        heads[b] = (0, b & 0x0F, 2, 0)  # fixmap
    for b in range(0x90, 0xA0):
        heads[b] = (0, b & 0x0F, 1, 0)  # fixarray
    for b in range(0xA0, 0xC0):
        heads[b] = (0, b & 0x1F, 0, 0)  # fixstr
    for b, width in {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}.items():  # bin, str
        heads[b] = (width, 0, 0, 0)
    for b, width in {0xC7: 1, 0xC8: 2, 0xC9: 4}.items():  # ext: a type byte after the length
        heads[b] = (width, 0, 0, 1)
    ints_and_floats = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
    for b, size in ints_and_floats.items():
        heads[b] = (0, size, 0, 0)
    for b, size in {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}.items():  # fixext
        heads[b] = (0, size, 0, 1)
    for b, (width, per) in {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}.items():  # array16/32, map16/32
        heads[b] = (width, 0, per, 0)
    return heads


_HEADS = _heads()
_NOT_OPENING = bytes(b for b in range(256) if not _HEADS[b][2] or b in (0x80, 0x90))
"""Bytes that never open a non-empty container: deleting them leaves an upper bound on depth."""


def nesting_exceeds(data: bytes, limit: int) -> bool:
    """True when the msgpack in `data` nests arrays and maps more than `limit` deep.

    Reads heads only and decodes nothing, in one pass; it stops at the end of the first
    value or of the bytes (bytes that are not msgpack are msgspec's to refuse). Most messages
    hold fewer bytes that could open a container than `limit`, and pass without a walk."""
    if len(data.translate(None, _NOT_OPENING)) <= limit:
        return False
    enclosing: list[int] = []  # items still due in each open container
    due = 1  # items still due at the current level
    i, end = 0, len(data)
    while i < end:
        width, length, per, pad = _HEADS[data[i]]
        if width:
            length = int.from_bytes(data[i + 1:i + 1 + width], "big")
        i += 1 + width
        due -= 1
        if per and length:
            enclosing.append(due)
            if len(enclosing) > limit:
                return True
            due = length * per
            continue
        if not per:
            i += length + pad
        while not due:
            if not enclosing:
                return False
            due = enclosing.pop()
    return False
