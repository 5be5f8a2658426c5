"""The error hierarchy. Users catch `ReverieError` or one of its subclasses, never `Exception`."""

from __future__ import annotations

__all__ = ["InvalidTaskId", "NestingTooDeep", "OversizedMessage", "ProtocolError", "ReverieError"]


class ReverieError(Exception):
    """Base class of every error reverie raises on purpose."""


class ProtocolError(ReverieError):
    """Bytes on the bus could not be decoded into the expected message.

    `reason` is a short machine-readable code (`malformed`, `oversized`, `too_deep`,
    `version`, `type`, `task_id`), `detail` the decoder's explanation.
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


class NestingTooDeep(ProtocolError):
    """A message whose arrays and maps nest deeper than the configured maximum; carries
    `.max_depth`. Refused before decoding: the decoder recurses once per level."""

    def __init__(self, max_depth: int, *, size: int) -> None:
        super().__init__("too_deep", f"arrays and maps nested deeper than the limit of {max_depth} levels",
                         size=size)
        self.max_depth = max_depth


class InvalidTaskId(ProtocolError):
    """A task id that cannot name the task's subjects, keys and memory paths; carries
    `.task_id` and `.max_length`."""

    def __init__(self, task_id: str, max_length: int) -> None:
        shown = f"{task_id[:64]!r}{'...' if len(task_id) > 64 else ''}"
        super().__init__("task_id", f"invalid task id {shown}: 1-{max_length} letters, digits, '-' or '_'")
        self.task_id = task_id
        self.max_length = max_length
