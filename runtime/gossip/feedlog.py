"""Feeds in an agent's memory: where blocks and fragments are kept, and reading them back.

    /gossip/<author>/head              the author's last block held here (its signed encoding)
    /gossip/<author>/blocks/<index>    every block held with its fragments (as carried on the
                                       wire; fragments still sealed under their content key)
    /gossip/<author>/frozen            proof of a fork (both block digests): nothing more admitted

Like every memory these are sealed again under the agent's data key at rest. The verifier's
state is not stored separately: it is the digests of the blocks held, rebuilt on open, and a
block, its fragments, the new head and what its payloads taught are one memory commit, so the
two can never disagree.

Functions here are synchronous and run on the memory thread (`Memory.run`).
"""

from __future__ import annotations

import msgspec

from ..memory import ANY, Batch, MemoryStore
from ..memory.model import AnyContent
from .feed import Block, Fragment, decode_block, encode_block, encode_fragment
from .wire import Carried

__all__ = ["FeedIndex", "Loaded", "add_block", "block_path", "frozen_path", "head_path", "load", "read_blocks"]

_W = 12  # digits of the zero-padded index in a path
_encode = msgspec.msgpack.Encoder().encode
_carried = msgspec.msgpack.Decoder(Carried).decode


def head_path(author: str) -> str:
    return f"/gossip/{author}/head"


def block_path(author: str, index: int) -> str:
    return f"/gossip/{author}/blocks/{index:0{_W}d}"


def frozen_path(author: str) -> str:
    return f"/gossip/{author}/frozen"


class FeedIndex:
    """Where each held block of one feed starts: index -> first seq, to find what a peer lacks."""

    __slots__ = ("first_seqs", "last_seq")

    def __init__(self) -> None:
        self.first_seqs: list[int] = []
        self.last_seq = 0

    def add(self, block: Block) -> None:
        self.first_seqs.append(block.first_seq)
        self.last_seq = block.first_seq + len(block.hashes) - 1

    def after(self, seq: int) -> int | None:
        """The index of the block that starts at `seq + 1`, or None (none held, or `seq` is not a
        block boundary of this feed: a peer that claims it is confused or lying)."""
        if seq >= self.last_seq:
            return None
        lo, hi = 0, len(self.first_seqs)
        while lo < hi:  # first_seqs is strictly increasing
            mid = (lo + hi) // 2
            if self.first_seqs[mid] <= seq:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self.first_seqs) and self.first_seqs[lo] == seq + 1 else None


class Loaded(msgspec.Struct):
    digests: list[bytes]
    index: FeedIndex
    frozen: bool
    last: Block | None


def load(store: MemoryStore, author: str) -> Loaded:
    """One feed as held in `store`: block digests in order, the index, the fork flag."""
    index = FeedIndex()
    digests: list[bytes] = []
    last: Block | None = None
    for _, raw in store.contents(f"/gossip/{author}/blocks/"):
        block = decode_block(_carried(raw).block)
        if block.index != len(digests):  # pragma: no cover - written in order, one commit per block
            break
        digests.append(block.digest)
        index.add(block)
        last = block
    return Loaded(digests, index, store.get(frozen_path(author)) is not None, last)


def add_block(batch: Batch, block: Block, fragments: list[Fragment], *,
              head_expect: str | AnyContent | None = ANY) -> None:
    """The writes that hold a verified block here (`head_expect`: a precondition on the head):
    one memory per block, so storing costs a put per block, not per fragment."""
    encoded = encode_block(block)
    batch.put(block_path(block.author, block.index),
              _encode(Carried(encoded, [encode_fragment(f) for f in fragments])))
    batch.put(head_path(block.author), encoded, expect=head_expect)


def read_blocks(store: MemoryStore, author: str, start: int, budget: int,
                max_blocks: int) -> tuple[list[Carried], int, bool]:
    """Blocks `start…` of `author` as held, until `budget` bytes or `max_blocks`: (blocks, bytes,
    whether some were held back). The first block is sent even if alone it exceeds the budget
    (a block is at most 1,024 fragments; the message size limit still applies)."""
    out: list[Carried] = []
    used = 0
    index = start
    while len(out) < max_blocks:
        held = store.get(block_path(author, index))
        if held is None:
            return out, used, False
        carried = _carried(held.content)
        size = len(carried.block) + sum(len(f) for f in carried.fragments)
        if out and used + size > budget:
            return out, used, True
        out.append(carried)
        used += size
        index += 1
    return out, used, store.get(block_path(author, index)) is not None
