"""What is stored under which key. Internal: the on-disk layout of one store.

Named databases (keys are plaintext metadata; every value that carries content, a hash of
content, an author or checkpoint data is sealed, see `crypto.Keys`):

- heads        path -> sealed Head (latest version number, sha256, author, time, flags)
- versions     path \\0 version(8, big-endian) -> sealed Record (content and its metadata)
- edges_out    src \\0 kind \\0 dst -> b""
- edges_in     dst \\0 kind \\0 src -> b""
- checkpoints  task id -> sealed bytes
- lessons      seq(8) -> sealed Lesson (live lessons only; seq is fresh for every version)
- features     HMAC(feature)[:16] -> seq(8), sorted fixed-size duplicates: the recall index,
               the newest `POSTINGS_PER_FEATURE` lessons per feature (see recall.py)
- dead         seq(8) path -> b"" (invalidated, not yet collapsed, non-lesson paths by age)
- meta         format, key check, counters
- quarantine   seq(8) -> sealed Quarantined: a value that failed to open, moved aside with
               its database, key, sealed bytes and error (see quarantine.py)

Paths are at most `MAX_PATH_BYTES` so two of them fit an edge key under LMDB's 511 bytes.
"""

from __future__ import annotations

import struct

import msgspec

from .errors import MemoryError
from .model import EdgeKind

__all__ = [
    "DB_NAMES",
    "FORMAT",
    "MAX_PATH_BYTES",
    "MAX_TASK_ID_BYTES",
    "OUTBOX",
    "POSTINGS_PER_FEATURE",
    "SEALED_DBS",
    "Head",
    "Record",
    "describe",
    "edge_key",
    "edge_kind",
    "path_key",
    "split_edge_key",
    "split_version_key",
    "task_key",
    "u64",
    "version_key",
]

FORMAT = b"reverie-memory/1"
MAX_PATH_BYTES = 240
MAX_TASK_ID_BYTES = 400
OUTBOX = "~outbox."
"""Checkpoint keys under this prefix are outbox entries (`Batch.outbox`): no task id starts
with `~` (task ids are letters, digits, '-' and '_')."""
POSTINGS_PER_FEATURE = 1000

DB_NAMES = ("heads", "versions", "edges_out", "edges_in", "checkpoints", "lessons", "features", "dead", "meta",
            "quarantine")
SEALED_DBS = ("heads", "versions", "lessons", "checkpoints")
"""The databases whose values are sealed (besides the key check in `meta`)."""

_u64 = struct.Struct(">Q")


class Head(msgspec.Struct, frozen=True, array_like=True):
    """The latest version of a path. `lesson_seq` > 0: a live lesson; `dead_seq` > 0: listed
    in `dead` for collapsing."""

    version: int
    sha256: bytes
    author: str
    created_at: float
    invalidated: bool
    size: int
    lesson: bool = False
    lesson_seq: int = 0
    dead_seq: int = 0
    collapsed: bool = False


class Record(msgspec.Struct, frozen=True, array_like=True):
    """One version's stored content; path and version number live in its key."""

    content: bytes
    sha256: bytes
    author: str
    created_at: float
    invalidated: bool = False
    reason: str = ""
    collapsed: bool = False


def u64(n: int) -> bytes:
    return _u64.pack(n)


def path_key(path: str) -> bytes:
    """The key bytes of a memory path; refuses what would break the key layout."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise MemoryError(f"memory paths are strings starting with '/', not {path!r}")
    raw = path.encode("utf-8")
    if b"\0" in raw:
        raise MemoryError(f"memory path {path!r} contains a NUL byte")
    if len(raw) > MAX_PATH_BYTES:
        raise MemoryError(f"memory path {path[:60]!r}… is {len(raw)} bytes (at most {MAX_PATH_BYTES})")
    return raw


def task_key(task_id: str) -> bytes:
    raw = task_id.encode("utf-8") if isinstance(task_id, str) else b""
    if not raw or b"\0" in raw or len(raw) > MAX_TASK_ID_BYTES:
        raise MemoryError(f"checkpoint task ids are 1..{MAX_TASK_ID_BYTES} bytes without NUL, not {task_id!r}")
    return raw


def version_key(pkey: bytes, version: int) -> bytes:
    return pkey + b"\0" + _u64.pack(version)


def split_version_key(key: bytes) -> tuple[str, int]:
    return key[:-9].decode("utf-8"), int.from_bytes(key[-8:], "big")


def edge_key(a: bytes, kind: EdgeKind, b: bytes) -> bytes:
    return a + b"\0" + kind.value.encode() + b"\0" + b


def split_edge_key(key: bytes) -> tuple[str, EdgeKind, str]:
    a, kind, b = key.split(b"\0", 2)
    return a.decode("utf-8"), EdgeKind(kind.decode()), b.decode("utf-8")


def edge_kind(kind: EdgeKind | str) -> EdgeKind:
    try:
        return EdgeKind(kind)
    except ValueError:
        raise MemoryError(f"unknown edge kind {kind!r} (one of: {', '.join(k.value for k in EdgeKind)})") from None


def describe(db: str, key: bytes) -> str:
    """Where a stored value is, for people: a path, a path's version, a lesson, a task's checkpoint."""
    text = key.decode("utf-8", "replace")
    if db == "heads":
        return text
    if db == "versions" and len(key) > 9 and key[-9:-8] == b"\0":
        return f"{key[:-9].decode('utf-8', 'replace')} v{int.from_bytes(key[-8:], 'big')}"
    if db == "lessons" and len(key) == 8:
        return f"lesson #{int.from_bytes(key, 'big')}"
    if db == "meta" and key == b"check":
        return "the store's key check"
    if db == "checkpoints":
        return f"outbox entry {text[len(OUTBOX):]}" if text.startswith(OUTBOX) else f"checkpoint of task {text}"
    return f"{db} {text!r}"
