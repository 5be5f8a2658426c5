"""Recall latency with a million memories stored.

Load: 1,000,000 memories in one store: 100,000 lessons, each indexed under 6-12 features
drawn Zipf-like from a vocabulary of 5,000 operation/state names (so a few features sit on tens
of thousands of lessons), and 900,000 plain memories of ~300 B. The bulk load runs with
`sync=False` and large batches (one fsync at the end) only to keep the benchmark short; it is
not what is measured. Queries: 1,000 random feature sets of 8-20 features from the same
distribution, `recall(features, limit=20)`, timed one by one.

Ours is measured three times over the same queries: on a freshly opened store (its cache of
decrypted lessons fills as the queries run), again (cache warm), and with the cache emptied
before every query (every lesson a query ranks is read and decrypted: the worst case).
Baseline: the same index layout and algorithm on raw py-lmdb (plaintext feature names as
keys, 8-byte lesson ids as sorted fixed-size duplicates trimmed to the newest 1,000 per
feature, plaintext msgpack lessons, no cache), holding the same lessons and plain memories,
in the same run; both must rank the same lessons.

    python bench/recall.py [--memories 1000000] [--lessons 100000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import lmdb
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, summary
from reverie.protocol import Reason
from reverie.runtime.memory import Lesson, MemoryStore
from reverie.runtime.memory.recall import POSTINGS_PER_FEATURE

VOCABULARY = 5000
CODES = ["harmful", "forbidden_op", "missing_required", "order", "over_budget", "risk", "too_long"]


class Zipf:
    """Feature names with P(rank r) proportional to 1/r."""

    def __init__(self, rng: random.Random, n: int) -> None:
        self.rng = rng
        self.names = [f"{'op' if i % 3 else 'state'}_{i:04d}" for i in range(n)]
        self.cum = list(itertools.accumulate(1 / (r + 1) for r in range(n)))

    def sample(self, k: int) -> list[str]:
        out: set[str] = set()
        while len(out) < k:
            out.add(self.names[bisect.bisect(self.cum, self.rng.random() * self.cum[-1])])
        return sorted(out)


def make_lesson(rng: random.Random, zipf: Zipf, i: int) -> Lesson:
    features = zipf.sample(rng.randint(6, 12))
    code = rng.choice(CODES)
    return Lesson(id=f"l{i:07d}", topic=code, task_id=f"t{i // 3:07d}", author="rules",
                  created_at=1.7e9 + i, weight=float(rng.randint(1, 5)),
                  reason=Reason(code=code, text=f"{code}: {features[0]} before {features[-1]} is not allowed",
                                ops=tuple(features[:2])),
                  features=tuple(features))


def load(store: MemoryStore, raw: RawIndex, rng: random.Random, zipf: Zipf, lessons: int,
         plain: int) -> Counter[str]:
    """Write the same memories to both stores; returns how many lessons each feature indexes."""
    postings: Counter[str] = Counter()
    body = os.urandom(150).hex().encode()
    batch_size = 20_000
    t0 = time.perf_counter()
    for start in range(0, lessons + plain, batch_size):
        batch = store.batch(author="bench")
        with raw.env.begin(write=True) as txn:
            for n in range(start, min(start + batch_size, lessons + plain)):
                if n < lessons:
                    lesson = make_lesson(rng, zipf, n)
                    batch.lesson(lesson)
                    raw.add(txn, n + 1, lesson)
                    postings.update(lesson.features)
                else:
                    path = f"/tasks/t{n // 9:07d}/rounds/{n % 3}/cand/{n % 9}"
                    batch.put(path, body)
                    txn.put(path.encode(), body)
        store.commit(batch)
        if (start // batch_size) % 10 == 9:
            print(f"  loaded {start + batch_size:,} memories in {time.perf_counter() - t0:.0f}s", flush=True)
    return postings


class RawIndex:
    """The baseline: the same index layout and recall algorithm on plain py-lmdb, without
    blinding (feature names are the keys), sealing (lessons are plain msgpack) or caching."""

    def __init__(self, env: lmdb.Environment) -> None:
        self.env = env
        self.ldb = env.open_db(b"lessons")
        self.fdb = env.open_db(b"features", dupsort=True, dupfixed=True)
        self.enc = msgspec.msgpack.Encoder()
        self.dec = msgspec.msgpack.Decoder(Lesson)

    def add(self, txn: lmdb.Transaction, seq: int, lesson: Lesson) -> None:
        key = seq.to_bytes(8, "big")
        txn.put(key, self.enc.encode(lesson), db=self.ldb)
        with txn.cursor(db=self.fdb) as cursor:
            for f in set(lesson.features):
                cursor.put(f.encode().ljust(32, b"\0"), key)  # fixed-size keys, as ours
                while cursor.count() > POSTINGS_PER_FEATURE and cursor.first_dup():
                    cursor.delete()

    def recall(self, features: list[str], limit: int) -> list[Lesson]:
        keys = sorted({f.encode().ljust(32, b"\0") for f in features})
        with self.env.begin() as txn:
            with txn.cursor(db=self.fdb) as cursor:
                packed = cursor.getmulti(keys, dupdata=True, dupfixed_bytes=8, keyfixed=True)
            counts = Counter(memoryview(packed).cast("Q")[4::5].tolist())
            sizes = Counter(counts.values())
            floor, reached = 0, 0
            for floor in sorted(sizes, reverse=True):
                reached += sizes[floor]
                if reached >= limit:
                    break
            ranked = []
            for word, n in counts.items():
                if n >= floor:
                    key = word.to_bytes(8, sys.byteorder)
                    lesson = self.dec.decode(txn.get(key, db=self.ldb))
                    ranked.append((n, lesson.weight, lesson.created_at, int.from_bytes(key, "big"), lesson))
        ranked.sort(key=lambda t: t[:4], reverse=True)
        return [t[4] for t in ranked[:limit]]


def timed(fn, queries: list[list[str]]) -> tuple[list[float], list[list[str]]]:
    samples, results = [], []
    for q in queries:
        t = time.perf_counter()
        found = fn(q)
        samples.append(time.perf_counter() - t)
        results.append([x.id for x in found])
    return samples, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memories", type=int, default=1_000_000)
    ap.add_argument("--lessons", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    args = ap.parse_args()
    rng = random.Random(20261125)
    zipf = Zipf(rng, VOCABULARY)
    tmp = Path(tempfile.mkdtemp(prefix="reverie-bench-recall-"))
    try:
        t = time.perf_counter()
        raw = RawIndex(lmdb.open(str(tmp / "raw"), map_size=8 << 30, sync=False, max_dbs=4))
        with MemoryStore.open(tmp / "ours", agent="bench", sync=False, map_size=1 << 30) as store:
            postings = load(store, raw, rng, zipf, args.lessons, args.memories - args.lessons)
            stats = store.stats()
        raw.env.sync(True)
        load_s = time.perf_counter() - t
        queries = [zipf.sample(rng.randint(8, 20)) for _ in range(args.queries)]
        with MemoryStore.open(tmp / "ours", agent="bench") as store:  # fresh: nothing cached yet
            cold, ours = timed(lambda q: store.recall(q, limit=20), queries)
            warm, _ = timed(lambda q: store.recall(q, limit=20), queries)

            def uncached(q: list[str]) -> list[Lesson]:
                store._cache.clear()  # every lesson a query ranks is read and decrypted again
                return store.recall(q, limit=20)

            none, _ = timed(uncached, queries)
        base, theirs = timed(lambda q: raw.recall(q, 20), queries)
        assert ours == theirs, "ours and the baseline rank the same lessons"
        raw.env.close()
        hot = postings.most_common(1)[0]
        capped = sum(1 for n in postings.values() if n > POSTINGS_PER_FEATURE)
        print(machine())
        print(f"{stats['memories']:,} memories ({args.lessons:,} lessons), {stats['used_bytes'] / 2**30:.2f} GiB; "
              f"loaded in {load_s:.0f}s (sync=False, batches of 20,000)")
        print(f"{len(postings):,} features indexed; the hottest, {hot[0]}, on {hot[1]:,} lessons; "
              f"{capped} features above the cap")
        print(f"{args.queries:,} queries of 8-20 features, limit=20, "
              f"newest {POSTINGS_PER_FEATURE:,} postings per feature")
        b = summary(base)
        for name, samples in [("raw py-lmdb", base), ("reverie, fresh open", cold), ("reverie, warm cache", warm),
                              ("reverie, no cache", none)]:
            x = summary(samples)
            ratio = ("" if samples is base
                     else f"   ratio p50 {x['p50'] / b['p50']:.2f}x  p99 {x['p99'] / b['p99']:.2f}x")
            print(f"{name:<20}: p50 {x['p50'] * 1e3:6.3f} ms  p99 {x['p99'] * 1e3:6.3f} ms  "
                  f"mean {x['mean'] * 1e3:6.3f} ms{ratio}")
        print("target: p99 < 5 ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
