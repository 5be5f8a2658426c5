"""Peers' blocks: what a peer lacks (`_missing`), and verifying, opening and storing what it sends.

A block is admitted only if its author's certificate is valid now, its one signature
verifies, it continues the author's chain, and every fragment is the one it signed; then its
payloads are opened, and the block, its fragments and what they teach (lessons for recall,
shared memories under `/peers/<author>/`) are one memory commit. Every refusal is counted by
kind (`gossip.refused.<kind>`), logged at most once per burst, and changes nothing.
"""

from __future__ import annotations

import random
import time

import msgspec

from ..memory import Batch, MemoryError
from .errors import Fork, GossipError, Malformed, Replay
from .feed import MAX_FRAGMENTS, Block, Fragment, decode_block, decode_fragment
from .feedlog import FeedIndex, add_block, frozen_path, read_blocks
from .state import NodeState
from .wire import Carried, LessonShare, MemoryShare, Payload, decode_payload

__all__ = ["MAX_REPLY_BLOCKS", "Admission"]

MAX_REPLY_BLOCKS = 512
"""Blocks one reply carries at most, whatever their size."""


class Admission(NodeState):
    """Serves what peers lack and admits what they send, block by block."""

    async def _missing(self, theirs: dict[str, int]) -> tuple[list[Carried], bool]:
        """Blocks held here that a peer with heads `theirs` lacks, within the reply budget."""
        budget = self.settings.max_reply_bytes
        out: list[Carried] = []
        more = False
        mine = self.heads()
        authors = [a for a, seq in mine.items() if seq > theirs.get(a, 0)]
        random.shuffle(authors)  # no author starves another when the budget runs out
        for author in authors:
            if budget <= 0 or len(out) >= MAX_REPLY_BLOCKS:
                more = True
                break
            start = self._index[author].after(theirs.get(author, 0))
            if start is None:
                continue
            blocks, used, held_back = await self.memory.run(
                read_blocks, self.memory.store, author, start, budget, MAX_REPLY_BLOCKS - len(out))
            out.extend(blocks)
            budget -= used
            more = more or held_back
        self.counters["gossip.blocks_sent"] += len(out)
        self.counters["gossip.block_bytes_sent"] += sum(len(c.block) + sum(map(len, c.fragments)) for c in out)
        return out, more

    async def _admit(self, carried: list[Carried], peer: str) -> tuple[int, int]:
        """Verify, open and store blocks; returns (admitted, refused)."""
        if not carried:
            return 0, 0
        async with self._admitting:
            self._refresh_keys()  # a revocation or rotation applies to the very next block
            batch = self.memory.store.batch()
            recorded: list[tuple[Block, bytes]] = []
            forks: list[Fork] = []
            refused = 0
            now = time.time()
            for item in carried:
                try:
                    block, fragments = self._decode(item)
                    if block.author == self.name:
                        self.counters["gossip.own"] += 1
                        continue
                    digest = self.verifier.check(block, fragments, now)
                    payloads = self._open(fragments)
                except Replay:
                    self.counters["gossip.duplicate"] += 1
                    continue
                except Fork as exc:
                    forks.append(exc)
                    refused += 1
                    self._refuse("fork", f"{exc} (from {peer}); the feed is frozen")
                    continue
                except GossipError as exc:
                    refused += 1
                    self._refuse(type(exc).__name__.lower(), f"refused a block from {peer}: {exc}")
                    continue
                self.verifier.record(block, digest)  # the next block of this feed checks against it
                recorded.append((block, digest))
                add_block(batch, block, fragments)
                for fragment, payload in zip(fragments, payloads, strict=True):
                    self._apply(batch, block.author, fragment, payload)
            for fork in forks:
                frozen = (fork.index, fork.admitted, fork.conflicting)
                batch.put(frozen_path(fork.author), msgspec.msgpack.encode(frozen))
            if len(batch):
                try:
                    await self.memory.commit(batch)
                except BaseException:
                    await self._load_feeds()  # nothing of it was stored: forget what was recorded
                    raise
            for block, _ in recorded:
                self._index.setdefault(block.author, FeedIndex()).add(block)
            self.counters["gossip.admitted"] += len(recorded)
            self.counters["gossip.fragments_admitted"] += sum(len(b.hashes) for b, _ in recorded)
            return len(recorded), refused

    def _decode(self, item: Carried) -> tuple[Block, list[Fragment]]:
        block = decode_block(item.block)
        if len(item.fragments) > MAX_FRAGMENTS:
            raise Malformed(f"{len(item.fragments)} fragments carried with one block")
        return block, [decode_fragment(f) for f in item.fragments]

    def _open(self, fragments: list[Fragment]) -> list[Payload | None]:
        """Every fragment's payload (None: opened, but not a payload this node understands).
        A fragment under a key not installed here makes the keys reload once (a rotation)."""
        if any(f.key_id not in self.keyring.key_ids() for f in fragments):
            self._refresh_keys(force=True)
        out: list[Payload | None] = []
        for fragment in fragments:
            plaintext = self.keyring.open(fragment)  # Undecryptable refuses the block
            try:
                out.append(decode_payload(plaintext))
            except (msgspec.DecodeError, ValueError):
                self._refuse("payload", f"fragment {fragment.seq} of {fragment.author} holds no known payload")
                out.append(None)
        return out

    def _apply(self, batch: Batch, author: str, fragment: Fragment, payload: Payload | None) -> None:
        try:
            match payload:
                case LessonShare(lesson=lesson):
                    batch.lesson(msgspec.structs.replace(lesson, source=author, created_at=0.0))
                case MemoryShare(path=path, content=content):
                    if not path.startswith("/"):
                        raise MemoryError(f"a shared memory path starts with '/', not {path[:40]!r}")
                    batch.put(f"/peers/{author}{path}", content)
        except (MemoryError, TypeError) as exc:
            # the block is signed and stays held (its feed goes on); this payload is not applied
            self._refuse("payload", f"fragment {fragment.seq} of {author} cannot be applied: {exc}")

    def _refuse(self, kind: str, detail: str) -> None:
        self.counters["gossip.refused"] += 1
        self.counters[f"gossip.refused.{kind}"] += 1
        self._burst.warning(f"refuse:{kind}", "gossip: %s", detail)
