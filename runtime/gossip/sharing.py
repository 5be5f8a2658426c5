"""This agent's own feed: queueing shares, staging them with the caller's commit, appending blocks."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Sequence

from ..memory import Batch, Lesson, MemoryError, PreconditionFailed
from ..process import pid_alive
from .errors import GossipError
from .feed import MAX_FRAGMENTS, Block, FeedWriter, decode_block
from .feedlog import FeedIndex, add_block, head_path, load
from .state import NodeState
from .wire import LessonShare, MemoryShare, Payload, encode_payload

__all__ = ["APPEND_ATTEMPTS", "BLOCK_PAYLOAD_BYTES", "Sharing", "Staged"]

BLOCK_PAYLOAD_BYTES = 48 * 1024
"""A shared block is cut at this many payload bytes, so any one block fits any reply."""
APPEND_ATTEMPTS = 10
"""Appends raced by another replica of this agent before giving up on a chunk."""

Staged = list[tuple[str | None, bytes]]


class Sharing(NodeState):
    """Appends what this agent shares to its feed, in blocks, off the caller's path."""

    def share(self, payloads: Iterable[Payload]) -> None:
        """Queue payloads for this agent's feed; they are sealed, signed and stored in blocks
        shortly (`flush()` waits for it). Never blocks the caller on crypto or disk. What is
        queued is lost if the process dies first: `stage` makes a share durable."""
        self._enqueue([(None, encode_payload(p)) for p in payloads])

    def share_lessons(self, lessons: Iterable[Lesson]) -> None:
        self.share(LessonShare(lesson) for lesson in lessons)

    def share_memory(self, path: str, content: bytes | str) -> None:
        self.share([MemoryShare(path, content.encode() if isinstance(content, str) else bytes(content))])

    def stage(self, batch: Batch, payloads: Iterable[Payload]) -> Staged:
        """Write `payloads` into `batch` as outbox entries, so they commit with the caller's
        own changes; after the commit, `release` what this returns. A crash in between loses
        nothing: the next start of this agent shares what its outbox holds. The entry is
        deleted in the same commit that appends it to the feed."""
        stamp = f"{self.name}.{os.getpid()}.{time.time_ns():020d}"
        staged: Staged = []
        for i, payload in enumerate(payloads):
            key, encoded = f"{stamp}.{i:06d}", encode_payload(payload)
            batch.outbox(key, encoded)
            staged.append((key, encoded))
        return staged

    def release(self, staged: Staged) -> None:
        """Share what `stage` put into a batch that has now committed."""
        self._enqueue(staged)

    async def flush(self) -> None:
        """Wait until everything shared so far is in this agent's feed."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    def _enqueue(self, entries: Staged) -> None:
        self._queue.extend(entries)
        if self._queue and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush(), name=f"gossip-share:{self.name}")

    async def _flush(self) -> None:
        while self._queue:
            chunk: Staged = []
            size = 0
            while self._queue and len(chunk) < MAX_FRAGMENTS:
                key, encoded = self._queue[0]
                if chunk and size + len(encoded) > BLOCK_PAYLOAD_BYTES:
                    break
                chunk.append((key, encoded))
                size += len(encoded)
                self._queue.pop(0)
            try:
                await self._append([encoded for _, encoded in chunk], [key for key, _ in chunk if key])
            except (GossipError, MemoryError) as exc:
                self.counters["gossip.share_failed"] += len(chunk)
                self._burst.warning("share", "could not append %d fragments to the feed of %s: %s",
                                    len(chunk), self.name, exc)

    async def _recover_outbox(self) -> None:
        """Queue what a dead process of this agent staged but never appended (its pid is in
        the key; a live replica's entries are its own business)."""
        mine = str(os.getpid())
        pending = [(key, data) for key, data in await self.memory.outbox(f"{self.name}.")
                   if (pid := key.split(".")[1]) == mine or not pid.isdigit() or not pid_alive(int(pid))]
        if pending:
            self.counters["gossip.recovered"] += len(pending)
            self.log.info("sharing %d fragments a stopped process of %s had staged", len(pending), self.name)
            self._enqueue([(key, data) for key, data in pending])

    async def _append(self, payloads: list[bytes], outbox: Sequence[str] = ()) -> Block:
        async with self._appending:
            for _ in range(APPEND_ATTEMPTS):
                self._refresh_keys()
                head = await self.memory.get(head_path(self.name))
                after = decode_block(head.content) if head is not None else None
                writer = FeedWriter(self.name, self._keys, after=after)
                block, fragments = writer.append(payloads, self.keyring.current())
                batch = self.memory.store.batch()
                # compare-and-set on the head: another replica of this agent may append too
                add_block(batch, block, fragments, head_expect=head.sha256 if head is not None else None)
                for key in outbox:  # shared now: the staged copy goes in the same commit
                    batch.outbox(key, None)
                try:
                    await self.memory.commit(batch)
                except PreconditionFailed:
                    continue
                self._note_own(after, block)
                self.counters["gossip.shared"] += len(fragments)
                return block
            raise GossipError(f"the feed of {self.name} kept changing under {APPEND_ATTEMPTS} appends")

    def _note_own(self, after: Block | None, block: Block) -> None:
        index = self._index.setdefault(self.name, FeedIndex())
        if (after.index + 1 if after is not None else 0) == len(index.first_seqs):
            index.add(block)
        self._own = block

    async def _refresh_own(self) -> None:
        """Pick up blocks another replica of this agent appended."""
        head = await self.memory.get(head_path(self.name))
        if head is None:
            return
        block = decode_block(head.content)
        if self._own is None or block.index > self._own.index:
            held = await self.memory.run(load, self.memory.store, self.name)
            self._index[self.name] = held.index
            self._own = held.last
