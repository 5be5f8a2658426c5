"""The store's reads: each a function of one read transaction's `Reader`.

`MemoryStore` runs them through its guard (which quarantines what a read found damaged, then
reads again); they only scan LMDB and open values, never write.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import lmdb
import msgspec

from .model import Edge, EdgeKind, Lesson, MemoryInfo, Version
from .records import OUTBOX, Head, edge_kind, split_edge_key, split_version_key, version_key
from .writer import Reader, raw_bytes

if TYPE_CHECKING:
    from .recall import LessonCache

__all__ = [
    "Direction",
    "checkpoint_ids",
    "contents",
    "edges",
    "heads",
    "history",
    "lessons",
    "outbox",
    "stats",
    "version",
    "walk",
]

Direction = Literal["out", "in"]
_lesson = msgspec.msgpack.Decoder(Lesson)
_OUTBOX = OUTBOX.encode()
_COUNTED = ("heads", "versions", "edges_out", "lessons", "checkpoints", "quarantine")


def version(r: Reader, vkey: bytes) -> Version | None:
    """The version stored at `vkey`, or None (absent or damaged)."""
    rec = r.record(vkey)
    if rec is None:
        return None
    path, number = split_version_key(vkey)
    return Version(path, number, rec.content, rec.sha256.hex(), rec.author, rec.created_at,
                   rec.invalidated, rec.reason, rec.collapsed)


def history(r: Reader, path: str, pkey: bytes) -> list[MemoryInfo]:
    """Every version of `path` (whose key is `pkey`), oldest first; damaged ones skipped."""
    prefix = pkey + b"\0"
    out = []
    with r.txn.cursor(db=r.dbs["versions"]) as cursor:
        if cursor.set_range(prefix):
            for key, raw in cursor:
                if not key.startswith(prefix):
                    break
                rec = r.record(key, raw)
                if rec is None:
                    continue  # damaged: quarantined, history goes on without it
                out.append(MemoryInfo(path, int.from_bytes(key[-8:], "big"), rec.sha256.hex(), rec.author,
                                      rec.created_at, rec.invalidated, len(rec.content)))
    return out


def heads(r: Reader, prefix: bytes, include_invalid: bool) -> list[MemoryInfo]:
    """The latest version of every path starting with `prefix`, in path order."""
    out = []
    for key, head in _heads_under(r, prefix):
        if include_invalid or not head.invalidated:
            out.append(MemoryInfo(key.decode("utf-8"), head.version, head.sha256.hex(),
                                  head.author, head.created_at, head.invalidated, head.size))
    return out


def contents(r: Reader, prefix: bytes, limit: int | None) -> list[tuple[str, bytes]]:
    """(path, latest content) of at most `limit` paths starting with `prefix`, in path order."""
    out: list[tuple[str, bytes]] = []
    with r.txn.cursor(db=r.dbs["heads"]) as cursor:
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix) or (limit is not None and len(out) >= limit):
                    break
                head = r.head(key)
                rec = None if head is None else r.record(version_key(key, head.version))
                if rec is not None:
                    out.append((key.decode("utf-8"), rec.content))
    return out


def edges(r: Reader, pkey: bytes, direction: Direction, kind: EdgeKind | None) -> list[Edge]:
    """Edges leaving (`"out"`) or arriving at (`"in"`) the path keyed `pkey`, optionally of one kind."""
    if direction not in ("out", "in"):
        raise ValueError(f"direction is 'out' or 'in', not {direction!r}")
    prefix = pkey + b"\0" + (b"" if kind is None else edge_kind(kind).value.encode() + b"\0")
    out = []
    with r.txn.cursor(db=r.dbs["edges_out" if direction == "out" else "edges_in"]) as cursor:
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix):
                    break
                a, k, b = split_edge_key(key)
                out.append(Edge(a, k, b) if direction == "out" else Edge(b, k, a))
    return out


def walk(r: Reader, start: str, direction: Direction, wanted: set[EdgeKind] | None, max_depth: int) -> list[str]:
    """Paths reachable from `start` breadth-first (start first, each once, at most `max_depth`
    edges away), following edges of the `wanted` kinds (None: all) in `direction`."""
    seen = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if seen[node] >= max_depth:
            continue
        for edge in edges(r, node.encode("utf-8"), direction, None):
            nxt = edge.dst if direction == "out" else edge.src
            if (wanted is None or edge.kind in wanted) and nxt not in seen:
                seen[nxt] = seen[node] + 1
                queue.append(nxt)
    return list(seen)


def checkpoint_ids(r: Reader) -> list[str]:
    """Task ids that have a checkpoint, sorted (outbox entries are not checkpoints)."""
    with r.txn.cursor(db=r.dbs["checkpoints"]) as cursor:
        return [k.decode("utf-8") for k in cursor.iternext(values=False) if not k.startswith(_OUTBOX)]


def outbox(r: Reader, prefix: str) -> list[tuple[str, bytes]]:
    """Outbox entries whose key starts with `prefix`, in key order; damaged ones skipped."""
    start = _OUTBOX + prefix.encode("utf-8")
    out: list[tuple[str, bytes]] = []
    with r.txn.cursor(db=r.dbs["checkpoints"]) as cursor:
        if not cursor.set_range(start):
            return out
        for key, raw in cursor.iternext():
            if not key.startswith(start):
                break
            data = r.open("checkpoints", key, raw, raw_bytes)
            if data is not None:
                out.append((key[len(_OUTBOX):].decode("utf-8"), data))
    return out


def lessons(r: Reader, topic: str | None, include_invalid: bool, cache: LessonCache) -> list[Lesson]:
    """Every lesson (of `topic`), in path order; invalidated ones only if asked for."""
    prefix = b"/lessons/" + (b"" if topic is None else topic.encode("utf-8") + b"/")
    out = []
    for key, head in _heads_under(r, prefix):
        if not head.lesson or (head.invalidated and not include_invalid):
            continue
        if head.lesson_seq:  # live: its recall copy (gone if quarantined: recall skips it too)
            lesson = cache.get(r, head.lesson_seq)
        else:  # invalidated: only its version record holds it
            lesson = r.content(version_key(key, head.version), _lesson.decode)
        if lesson is not None:
            out.append(lesson)
    return out


def _heads_under(r: Reader, prefix: bytes) -> Iterator[tuple[bytes, Head]]:
    """(path key, head) of every readable path starting with `prefix`, in path order."""
    with r.txn.cursor(db=r.dbs["heads"]) as cursor:
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix):
                    break
                head = r.head(key)
                if head is not None:
                    yield key, head


def stats(r: Reader, env: lmdb.Environment) -> dict[str, int]:
    """Entry counts of the store's databases, and map_size / used_bytes of its environment `env`."""
    n = {name: r.txn.stat(r.dbs[name])["entries"] for name in _COUNTED}
    info, st = env.info(), env.stat()
    return {"memories": n["heads"], "versions": n["versions"], "edges": n["edges_out"],
            "lessons": n["lessons"], "checkpoints": n["checkpoints"], "quarantined": n["quarantine"],
            "map_size": info["map_size"], "used_bytes": (info["last_pgno"] + 1) * st["psize"]}
