"""A batch: the writes of one atomic commit, collected in pure Python (no I/O, any thread).

Arguments are checked when an operation is added, so a malformed path fails at the line
that wrote it; preconditions are checked by `MemoryStore.commit`, inside its transaction.
"""

from __future__ import annotations

import msgspec

from .errors import MemoryError
from .model import ANY, AnyContent, EdgeKind, Lesson
from .records import OUTBOX, edge_kind, path_key, task_key

__all__ = ["Batch", "CheckpointOp", "InvalidateOp", "LessonOp", "LinkOp", "Op", "PutOp"]


class PutOp(msgspec.Struct, frozen=True):
    path: str
    key: bytes
    content: bytes
    expect: str | AnyContent | None


class LinkOp(msgspec.Struct, frozen=True):
    src: bytes
    kind: EdgeKind
    dst: bytes


class InvalidateOp(msgspec.Struct, frozen=True):
    path: str
    key: bytes
    reason: str
    expect: str | AnyContent = ANY


class CheckpointOp(msgspec.Struct, frozen=True):
    key: bytes
    data: bytes | None


class LessonOp(msgspec.Struct, frozen=True):
    lesson: Lesson


Op = PutOp | LinkOp | InvalidateOp | CheckpointOp | LessonOp


def _content(content: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    raise TypeError(f"memory content is bytes or str, not {type(content).__name__}")


def _segment(what: str, value: str) -> None:
    if not isinstance(value, str) or not value or "/" in value or "\0" in value:
        raise MemoryError(f"a lesson {what} is a non-empty string without '/' or NUL, not {value!r}")


class Batch:
    """The writes of one commit, applied in order, all or nothing. Build with `store.batch()`."""

    __slots__ = ("author", "ops")

    def __init__(self, author: str) -> None:
        self.author = author
        self.ops: list[Op] = []

    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self) -> str:
        return f"<Batch by {self.author!r}: {len(self.ops)} operations>"

    def put(self, path: str, content: bytes | str, *, expect: str | AnyContent | None = ANY) -> None:
        """A new version of `path`.

        `expect`: ANY writes unconditionally; None requires that `path` does not exist yet; a
        sha256 hex requires that the current content hashes to it (compare-and-set).
        """
        key = path_key(path)
        if not (expect is None or expect is ANY or isinstance(expect, str)):
            raise TypeError(f"expect is ANY, None or a sha256 hex string, not {expect!r}")
        self.ops.append(PutOp(path, key, _content(content), expect.lower() if isinstance(expect, str) else expect))

    def link(self, src: str, kind: EdgeKind, dst: str) -> None:
        """An edge `src -kind-> dst` (idempotent; neither end has to exist)."""
        self.ops.append(LinkOp(path_key(src), edge_kind(kind), path_key(dst)))

    def invalidate(self, path: str, reason: str, *, expect: str | AnyContent = ANY) -> None:
        """A new version of `path` with the same content, flagged invalid with `reason`.

        History keeps every version; recall ignores an invalidated lesson. The path must exist
        (earlier in this batch counts). `expect`, a sha256 hex, requires that the current
        content hashes to it (compare-and-set, as for `put`): a delete never buries a write it
        did not see."""
        if not (expect is ANY or isinstance(expect, str)):
            raise TypeError(f"expect is ANY or a sha256 hex string, not {expect!r}")
        self.ops.append(InvalidateOp(path, path_key(path), str(reason),
                                     expect.lower() if isinstance(expect, str) else expect))

    def checkpoint(self, task_id: str, data: bytes | None) -> None:
        """Replace the task's checkpoint with opaque `data`; None deletes it."""
        self.ops.append(CheckpointOp(task_key(task_id), None if data is None else _content(data)))

    def outbox(self, key: str, data: bytes | None) -> None:
        """Put (or, with None, delete) an entry of the outbox: opaque work the runtime must
        finish after this batch commits, even across a crash (gossip shares). Kept beside the
        checkpoints, encrypted like them, and never listed as one."""
        self.ops.append(CheckpointOp(task_key(OUTBOX + key), None if data is None else _content(data)))

    def lesson(self, lesson: Lesson) -> None:
        """Store `lesson` at /lessons/<topic>/<id> and index it by its features.

        The same id again is a new version that replaces the lesson (its weight included)."""
        if not isinstance(lesson, Lesson):
            raise TypeError(f"expected a Lesson, not {type(lesson).__name__}")
        _segment("topic", lesson.topic)
        _segment("id", lesson.id)
        if lesson.source:
            _segment("source", lesson.source)
        path_key(lesson.path)
        self.ops.append(LessonOp(lesson))
