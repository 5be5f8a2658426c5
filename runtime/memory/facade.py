"""Memory: the async face of a MemoryStore, for agents.

Every call runs on one dedicated worker thread, so LMDB work (and fsync) never blocks the
event loop and a write transaction never crosses threads. Calls run in the order they were
made. A cancelled caller does not cancel the call: a commit then lands or not, atomically.
"""

from __future__ import annotations

import asyncio
import builtins  # `list` is also a method name in the class body
import functools
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from .batch import Batch
from .errors import MemoryError, WrongProcess
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
from .store import MemoryStore
from .writer import raw_bytes

__all__ = ["Memory"]

T = TypeVar("T")


class Memory:
    """Open with `await Memory.open(directory, agent=...)`; build batches with `memory.store.batch()`."""

    def __init__(self, store: MemoryStore, executor: ThreadPoolExecutor) -> None:
        self.store = store
        self._executor = executor
        self._closed = False
        self._group: builtins.list[tuple[Batch, asyncio.Future[builtins.list[Version]]]] = []
        self._group_lock = threading.Lock()
        self._flushing = False
        self._pid = os.getpid()

    @classmethod
    async def open(cls, directory: str | Path, *, agent: str,
                   on_quarantine: Callable[[builtins.list[Quarantined]], None] | None = None, **kw: Any) -> Memory:
        """Open the store (on the worker thread; see `MemoryStore.open` for the options).

        `on_quarantine` is called on this event loop with the values found damaged and moved
        aside (each once), by this memory or by any other store of this process on the same
        directory (say, the gossip node's)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"memory-{agent}")
        if on_quarantine is not None:
            kw["on_quarantine"] = _on_loop(asyncio.get_running_loop(), on_quarantine)
        opening = executor.submit(MemoryStore.open, directory, agent=agent, **kw)
        try:
            store = await asyncio.wrap_future(opening)
        except BaseException:
            # cancelled while the worker still opens it: close what it opens, on the worker
            opening.add_done_callback(_close_opened)
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def close(self) -> None:
        """Close after every call already made has run."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.store.close)
        finally:
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Memory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run `fn(*args, **kw)` on the memory thread (say, a consolidation dream over `store`)."""
        if self._closed:
            raise MemoryError(f"memory {self.store.path} is closed")
        if os.getpid() != self._pid:  # the worker thread did not survive the fork: fail, don't hang
            raise WrongProcess(self.store.path, self._pid, os.getpid())
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kw))

    async def commit(self, batch: Batch) -> builtins.list[Version]:
        """Commit `batch` atomically. Batches committed while an earlier commit is being
        written are grouped into the next transaction (one fsync for all of them, each batch
        still all-or-nothing on its own), so many dreaming tasks don't queue behind fsyncs."""
        if self._closed:
            raise MemoryError(f"memory {self.store.path} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[builtins.list[Version]] = loop.create_future()
        with self._group_lock:
            self._group.append((batch, future))
            start = not self._flushing
            self._flushing = True
        if start:
            self._executor.submit(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the memory thread: commit what is queued, again and again, until nothing is."""
        while True:
            with self._group_lock:
                group, self._group = self._group, []
                if not group:
                    self._flushing = False
                    return
            outcomes: builtins.list[Any]
            try:
                outcomes = list(self.store.commit_many([batch for batch, _ in group]))
            except BaseException as exc:  # the transaction itself failed: every batch did
                outcomes = [exc] * len(group)
            for (_, future), outcome in zip(group, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, outcome)

    async def put(self, path: str, content: bytes | str, *, expect: str | AnyContent | None = ANY,
                  author: str | None = None) -> Version:
        return await self.run(self.store.put, path, content, expect=expect, author=author)

    async def get(self, path: str) -> Version | None:
        return await self.run(self.store.get, path)

    async def get_version(self, path: str, version: int) -> Version | None:
        return await self.run(self.store.get_version, path, version)

    async def history(self, path: str) -> builtins.list[MemoryInfo]:
        return await self.run(self.store.history, path)

    async def list(self, prefix: str = "/", *, include_invalid: bool = True) -> builtins.list[MemoryInfo]:
        return await self.run(self.store.list, prefix, include_invalid=include_invalid)

    async def contents(self, prefix: str, *, limit: int | None = None) -> builtins.list[tuple[str, bytes]]:
        return await self.run(self.store.contents, prefix, limit=limit)

    async def edges(self, path: str, *, direction: Literal["out", "in"] = "out",
                    kind: EdgeKind | None = None) -> builtins.list[Edge]:
        return await self.run(self.store.edges, path, direction=direction, kind=kind)

    async def walk(self, start: str, *, direction: Literal["out", "in"] = "out",
                   kinds: Iterable[EdgeKind] | None = None, max_depth: int = 16) -> builtins.list[str]:
        return await self.run(self.store.walk, start, direction=direction,
                              kinds=None if kinds is None else list(kinds), max_depth=max_depth)

    @overload
    async def checkpoint(self, task_id: str) -> bytes | None: ...

    @overload
    async def checkpoint(self, task_id: str, decode: Callable[[bytes], T]) -> T | None: ...

    async def checkpoint(self, task_id: str, decode: Callable[[bytes], Any] = raw_bytes) -> Any:
        return await self.run(self.store.checkpoint, task_id, decode)

    async def load(self, path: str, decode: Callable[[bytes], T]) -> T | None:
        result: T | None = await self.run(self.store.load, path, decode)
        return result

    async def checkpoints(self) -> builtins.list[str]:
        return await self.run(self.store.checkpoints)

    async def outbox(self, prefix: str = "") -> builtins.list[tuple[str, bytes]]:
        return await self.run(self.store.outbox, prefix)

    async def recall(self, features: Iterable[str], *, limit: int = 20) -> builtins.list[Lesson]:
        return await self.run(self.store.recall, list(features), limit=limit)

    async def lessons(self, topic: str | None = None, *, include_invalid: bool = False) -> builtins.list[Lesson]:
        return await self.run(self.store.lessons, topic, include_invalid=include_invalid)

    async def collapse(self, *, keep_dead: int) -> int:
        return await self.run(self.store.collapse, keep_dead=keep_dead)

    async def stats(self) -> dict[str, int]:
        return await self.run(self.store.stats)

    async def used_bytes(self) -> int:
        """Bytes the store uses on disk (LMDB pages in use times the page size); cheap, no transaction."""
        return await self.run(self.store.used_bytes)

    async def verify(self) -> Verification:
        return await self.run(self.store.verify)

    async def repair(self) -> builtins.list[Quarantined]:
        return await self.run(self.store.repair)

    async def quarantined(self) -> builtins.list[Quarantined]:
        return await self.run(self.store.quarantined)


def _on_loop(loop: asyncio.AbstractEventLoop,
             callback: Callable[[builtins.list[Quarantined]], None]) -> Callable[[builtins.list[Quarantined]], None]:
    def deliver(moved: builtins.list[Quarantined]) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback, moved)

    return deliver


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():  # the caller was cancelled; the commit landed (or not) all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _close_opened(opening: Future[MemoryStore]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
