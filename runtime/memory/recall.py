"""Recall: the live lessons that share the most features with a task.

Each feature (blinded by its HMAC) keys a sorted list of fixed-size lesson sequence numbers;
a lesson's postings are removed when it is invalidated or replaced, so every posting is live.
Ranking: shared-feature count, then weight, then created_at (all descending).

A feature common to most lessons (say, an operation every task has) says little about any one
of them and would make every recall read most of the index. So each feature keeps only the
postings of its newest `POSTINGS_PER_FEATURE` lessons (older ones are dropped from that
feature's list on write): an older lesson stays recallable through its rarer features. That
bounds the work of a recall, whose cost is counting postings (one C-level bulk read of every
list, then a Counter), whatever the store's size.

Lesson records are immutable per sequence number, so decrypted ones are cached per store.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable

from .model import Lesson
from .records import POSTINGS_PER_FEATURE as POSTINGS_PER_FEATURE  # kept importable here for bench/recall.py
from .writer import Reader

__all__ = ["CACHE_SIZE", "LessonCache", "recall"]

CACHE_SIZE = 1 << 17
_SEQ = 8
_RECORD_WORDS = 3  # 16-byte feature key + 8-byte seq, as 64-bit words


class LessonCache:
    """seq -> decrypted Lesson. Never stale: a sequence number is never reused."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: dict[int, Lesson] = {}

    def clear(self) -> None:
        self._items.clear()

    def get(self, reader: Reader, seq: int) -> Lesson | None:
        lesson = self._items.get(seq)
        if lesson is None:
            lesson = reader.lesson(seq)
            if lesson is not None:
                if len(self._items) >= self.size:
                    self._items.clear()
                self._items[seq] = lesson
        return lesson


def _seq(word: int) -> int:
    """The sequence number of a posting read as a native 64-bit word (it is stored big-endian)."""
    return int.from_bytes(word.to_bytes(_SEQ, sys.byteorder), "big")


def recall(reader: Reader, features: Iterable[str], limit: int, cache: LessonCache) -> list[Lesson]:
    hkeys = sorted({reader.keys.feature(f) for f in features})
    if limit <= 0 or not hkeys:
        return []
    with reader.txn.cursor(db=reader.dbs["features"]) as cursor:
        packed = cursor.getmulti(hkeys, dupdata=True, dupfixed_bytes=_SEQ, keyfixed=True)
    # every posting's seq as one native 64-bit word: an opaque id until `_seq` decodes it
    counts = Counter(memoryview(packed).cast("Q")[_RECORD_WORDS - 1::_RECORD_WORDS].tolist())
    # the smallest shared-feature count that still reaches `limit` lessons: rank only those
    sizes = Counter(counts.values())
    floor, reached = 0, 0
    for floor in sorted(sizes, reverse=True):
        reached += sizes[floor]
        if reached >= limit:
            break
    ranked = [(n, lesson.weight, lesson.created_at, seq, lesson) for word, n in counts.items()
              if n >= floor and (lesson := cache.get(reader, seq := _seq(word))) is not None]
    ranked.sort(key=lambda t: t[:4], reverse=True)  # ties beyond created_at: the newer lesson first
    return [t[4] for t in ranked[:limit]]
