"""MemoryStore: an agent's versioned, encrypted, graph-linked memory in one LMDB environment.

Synchronous. Threads may share a store (its calls serialize on the environment's lock), but
agents go through the `Memory` facade, which keeps every call on one worker thread, off the
event loop. Every commit is one LMDB write transaction: atomic, and durable when it returns if
the store was opened with `sync=True` (the default). Another process (the CLI, say) may open
the same directory at the same time; a forked child must open its own (`WrongProcess`).

A value that fails to open (damaged on disk) never fails a call: it is quarantined (moved
aside, logged once, reported to `on_quarantine`) and from then on reads as absent; see
quarantine.py for what that means for each kind of value.
"""

from __future__ import annotations

import builtins  # `list` is also a method name in the class body
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import quarantine, queries
from .batch import Batch
from .crypto import Keys, load_or_create_key
from .env import Listener, SharedEnv, acquire, check_key, release
from .errors import CorruptRecord, MemoryError, WrongProcess
from .guard import Guard
from .model import (
    ANY,
    AnyContent,
    Edge,
    EdgeKind,
    Lesson,
    MemoryInfo,
    Quarantined,
    Verification,
    Version,
)
from .queries import Direction
from .recall import LessonCache, recall
from .records import edge_kind, path_key, task_key, version_key
from .writer import Reader, Writer, raw_bytes

if TYPE_CHECKING:
    from .env import Txn

__all__ = ["MemoryStore"]

T = TypeVar("T")


class MemoryStore:
    """Open with `MemoryStore.open(directory, agent=...)`; close it (or use `with`)."""

    def __init__(self, directory: Path, agent: str, shared: SharedEnv, keys: Keys,
                 on_quarantine: Listener | None = None) -> None:
        self._directory = directory
        self._agent = agent
        self._shared = shared
        self._dbs = shared.dbs
        self._keys = keys
        self._pid = os.getpid()
        self._closed = False
        self._cache = LessonCache()
        self._guard = Guard(shared, keys, agent, directory)
        self._listener = on_quarantine
        if on_quarantine is not None:
            shared.listeners.append(on_quarantine)

    @classmethod
    def open(cls, directory: str | Path, *, agent: str, map_size: int = 64 << 20,
             sync: bool = True, on_quarantine: Listener | None = None) -> MemoryStore:
        """Open (creating on first use) the store in `directory`.

        `map_size` is only the initial map: it doubles whenever a commit needs more. A store
        already open in this process shares its environment (and its first `sync` setting).
        `on_quarantine` is called (on the thread that found the damage) with the values any
        store of this process quarantines in this directory, each once, until this one closes.
        """
        directory = Path(directory).absolute()
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        # the key is created before the LMDB files: files without a key mean a key was lost
        keys = Keys(load_or_create_key(directory, create=not (directory / "data.mdb").exists()))
        shared = acquire(directory, map_size=map_size, sync=sync)
        try:
            check_key(shared, keys, directory)
        except BaseException:
            release(shared)
            raise
        return cls(directory, agent, shared, keys, on_quarantine)

    def close(self) -> None:
        """Close the store. In a forked child it only forgets it: the parent owns the LMDB state."""
        if self._closed:
            return
        self._closed = True
        if self._listener is not None and self._listener in self._shared.listeners:
            self._shared.listeners.remove(self._listener)
        if os.getpid() == self._pid:
            release(self._shared)

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MemoryStore {self._agent!r} at {self._directory}{' (closed)' if self._closed else ''}>"

    @property
    def path(self) -> str:
        return str(self._directory)

    @property
    def agent(self) -> str:
        return self._agent

    # ------------------------------------------------------------------ writes

    def batch(self, author: str | None = None) -> Batch:
        """An empty batch whose writes are authored by `author` (default: this store's agent)."""
        return Batch(self._agent if author is None else author)

    def commit(self, batch: Batch) -> builtins.list[Version]:
        """Apply `batch` in one transaction, all or nothing.

        Returns the new versions of its put, invalidate and lesson operations, in order. A failed
        precondition raises `PreconditionFailed` and writes nothing.
        """
        if not batch.ops:
            self._check()
            return []
        now = time.time()
        return self._write(lambda txn: Writer(txn, self._dbs, self._keys, now).apply(batch.ops, batch.author))

    def commit_many(self, batches: Sequence[Batch]) -> builtins.list[builtins.list[Version] | MemoryError]:
        """Group commit: every batch in one LMDB transaction (one fsync), each in a nested
        transaction of its own, so a batch whose precondition fails is rolled back alone and
        its error returned in its place; the others land together."""
        now = time.time()

        def apply_all(txn: Txn) -> builtins.list[builtins.list[Version] | MemoryError]:
            outcomes: builtins.list[builtins.list[Version] | MemoryError] = []
            for batch in batches:
                child = self._shared.env.begin(write=True, parent=txn)
                try:
                    versions = Writer(child, self._dbs, self._keys, now).apply(batch.ops, batch.author)
                except CorruptRecord:  # not this batch's failure: quarantine the value, run them all again
                    child.abort()
                    raise
                except MemoryError as exc:
                    child.abort()
                    outcomes.append(exc)
                    continue
                except BaseException:
                    child.abort()
                    raise
                child.commit()
                outcomes.append(versions)
            return outcomes

        if not batches:
            return []
        return self._write(apply_all)

    def put(self, path: str, content: bytes | str, *, expect: str | AnyContent | None = ANY,
            author: str | None = None) -> Version:
        batch = self.batch(author)
        batch.put(path, content, expect=expect)
        return self.commit(batch)[0]

    def collapse(self, *, keep_dead: int) -> int:
        """Size budget: invalidated paths beyond the newest `keep_dead` (by invalidation time)
        lose their versions' content (b"", flagged `collapsed`); history, authors, times and
        hashes stay. Lessons are never collapsed. Returns how many paths were collapsed."""
        return self._write(lambda txn: Writer(txn, self._dbs, self._keys, time.time()).collapse(keep_dead))

    # ------------------------------------------------------------------ reads (queries.py)

    def get(self, path: str) -> Version | None:
        """The latest version of `path` (an invalidated one included, flagged), or None."""
        pkey = path_key(path)

        def latest(r: Reader) -> Version | None:
            vkey = r.latest(pkey)
            return None if vkey is None else queries.version(r, vkey)

        return self._read(latest)

    def get_version(self, path: str, version: int) -> Version | None:
        vkey = version_key(path_key(path), version) if 0 < version < 1 << 64 else None
        return None if vkey is None else self._read(lambda r: queries.version(r, vkey))

    def history(self, path: str) -> builtins.list[MemoryInfo]:
        """Every version of `path`, oldest first."""
        pkey = path_key(path)
        return self._read(lambda r: queries.history(r, path, pkey))

    def list(self, prefix: str = "/", *, include_invalid: bool = True) -> builtins.list[MemoryInfo]:
        """The latest version of every path starting with `prefix`, in path order."""
        raw_prefix = prefix.encode("utf-8")
        return self._read(lambda r: queries.heads(r, raw_prefix, include_invalid))

    def contents(self, prefix: str, *, limit: int | None = None) -> builtins.list[tuple[str, bytes]]:
        """(path, latest content) of every path starting with `prefix`, in path order, read in one
        transaction; at most `limit` of them."""
        raw_prefix = prefix.encode("utf-8")
        return self._read(lambda r: queries.contents(r, raw_prefix, limit))

    def edges(self, path: str, *, direction: Direction = "out",
              kind: EdgeKind | None = None) -> builtins.list[Edge]:
        """Edges leaving `path` ("out") or arriving at it ("in"), optionally of one kind."""
        pkey = path_key(path)
        return self._read(lambda r: queries.edges(r, pkey, direction, kind))

    def walk(self, start: str, *, direction: Direction = "out", kinds: Iterable[EdgeKind] | None = None,
             max_depth: int = 16) -> builtins.list[str]:
        """Paths reachable from `start` breadth-first (start first, each once, at most
        `max_depth` edges away), following edges of `kinds` (default: all) in `direction`."""
        wanted = None if kinds is None else {edge_kind(k) for k in kinds}
        path_key(start)
        return self._read(lambda r: queries.walk(r, start, direction, wanted, max_depth))

    @overload
    def checkpoint(self, task_id: str) -> bytes | None: ...

    @overload
    def checkpoint(self, task_id: str, decode: Callable[[bytes], T]) -> T | None: ...

    def checkpoint(self, task_id: str, decode: Callable[[bytes], Any] = raw_bytes) -> Any:
        """The task's checkpoint (decoded by `decode`), or None.

        Data that `decode` refuses (raising msgspec.DecodeError or ValueError) is treated as
        damage: quarantined, then None. Pass a decoder only for data whose format you own."""
        tkey = task_key(task_id)

        def get(r: Reader) -> Any:
            raw = r.txn.get(tkey, db=self._dbs["checkpoints"])
            return None if raw is None else r.open("checkpoints", tkey, raw, decode)

        return self._read(get)

    def checkpoints(self) -> builtins.list[str]:
        """Task ids that have a checkpoint, sorted (outbox entries are not checkpoints)."""
        return self._read(queries.checkpoint_ids)

    def outbox(self, prefix: str = "") -> builtins.list[tuple[str, bytes]]:
        """Outbox entries (`Batch.outbox`) whose key starts with `prefix`, in key order."""
        return self._read(lambda r: queries.outbox(r, prefix))

    def recall(self, features: Iterable[str], *, limit: int = 20) -> builtins.list[Lesson]:
        """Live lessons sharing at least one feature, best first (see `recall.py`)."""
        wanted = [f for f in features]
        return self._read(lambda r: recall(r, wanted, limit, self._cache))

    def lessons(self, topic: str | None = None, *, include_invalid: bool = False) -> builtins.list[Lesson]:
        """Every lesson (of `topic`), in path order; invalidated ones only if asked for."""
        return self._read(lambda r: queries.lessons(r, topic, include_invalid, self._cache))

    def stats(self) -> dict[str, int]:
        """Counts (memories, versions, edges, live lessons, checkpoints, quarantined values) and
        map_size / used_bytes."""
        return self._read(lambda r: queries.stats(r, self._shared.env))

    def used_bytes(self) -> int:
        """Bytes the store's LMDB environment uses: its pages in use times the page size."""
        self._check()
        return self._shared.used_bytes()

    def load(self, path: str, decode: Callable[[bytes], T]) -> T | None:
        """The latest content of `path` decoded by `decode`, or None (no such path, or its
        content was collapsed). Content that `decode` refuses (msgspec.DecodeError or
        ValueError) is treated as damage: quarantined, and the path reads as its newest older
        version that opens. Pass a decoder only for content whose format you own."""
        pkey = path_key(path)

        def latest(r: Reader) -> T | None:
            vkey = r.latest(pkey)
            return None if vkey is None else r.content(vkey, decode)

        return self._read(latest)

    # ------------------------------------------------------------------ damage

    def verify(self) -> Verification:
        """Open every sealed value of the store and report those that fail; moves nothing."""
        self._check()
        return self._guard.verify()

    def repair(self) -> builtins.list[Quarantined]:
        """Quarantine every value `verify` finds damaged (mending what referred to it, see
        quarantine.py); returns what was moved."""
        damaged = self.verify().damaged
        return self._guard.quarantine(builtins.list(damaged)) if damaged else []

    def quarantined(self) -> builtins.list[Quarantined]:
        """Every value moved aside so far, in the order they were moved."""
        return self._read(lambda r: quarantine.entries(r.txn, self._dbs, self._keys))

    # ------------------------------------------------------------------ internals

    def _check(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            raise WrongProcess(str(self._directory), self._pid, pid)
        if self._closed:
            raise MemoryError(f"memory store {self._directory} is closed")

    def _read(self, fn: Callable[[Reader], T]) -> T:
        self._check()
        return self._guard.read(fn)

    def _write(self, fn: Callable[[Txn], T]) -> T:
        self._check()
        return self._guard.write(fn)
