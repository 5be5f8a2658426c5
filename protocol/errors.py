"""The error hierarchy. Users catch `ReverieError` or one of its subclasses, never `Exception`."""

from __future__ import annotations


class ReverieError(Exception):
    """Base class of every error reverie raises on purpose."""


class ProtocolError(ReverieError):
    """Bytes on the bus could not be decoded into the expected message.

    `reason` is a short machine-readable code (`malformed`, `oversized`, `version`, `type`),
    `detail` the decoder's explanation.
    """

    def __init__(self, reason: str, detail: str, *, size: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.size = size


class OversizedMessage(ProtocolError):
    """A message larger than the configured maximum; carries `.size` and `.max_size`."""

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__("oversized", f"{size} bytes exceeds the limit of {max_size}", size=size)
        self.max_size = max_size
