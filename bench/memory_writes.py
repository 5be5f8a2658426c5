"""Durable memory writes per second: one dream round's worth of memories per commit.

Ours: `MemoryStore.commit` of batches of 10 new memories (~500 B each, at new paths as a dream
round writes them) plus the task's checkpoint (500 B): versioned, authored, sealed with
ChaCha20-Poly1305, `sync=True` (every commit fsynced). Baseline: raw py-lmdb, the same 11
values of the same sizes under the same keys, 11 puts per write transaction, `sync=True`, in
a separate environment on the same filesystem. Runs alternate in slices so both sides see the
same disk.

    python bench/memory_writes.py [--batches 3000] [--slices 6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import lmdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from reverie.runtime.memory import MemoryStore

MEMORIES = 10
SIZE = 500


def round_values(task: int) -> list[tuple[str, bytes]]:
    """The paths and ~500 B contents of one round of task `task` (JSON-ish, not compressible)."""
    out = []
    for i in range(MEMORIES):
        body = os.urandom((SIZE - 60) // 2).hex()
        out.append((f"/tasks/t{task:07d}/rounds/1/cand/{i}", f'{{"id":"{task}-{i}","text":"{body}"}}'.encode()))
    return out


def raw_slice(env: lmdb.Environment, rounds: list[list[tuple[str, bytes]]], checkpoint: bytes, first: int) -> float:
    t = time.perf_counter()
    for n, values in enumerate(rounds, first):
        with env.begin(write=True) as txn:
            for path, content in values:
                txn.put(path.encode(), content)
            txn.put(f"t{n:07d}".encode(), checkpoint)
    return time.perf_counter() - t


def ours_slice(store: MemoryStore, rounds: list[list[tuple[str, bytes]]], checkpoint: bytes, first: int) -> float:
    t = time.perf_counter()
    for n, values in enumerate(rounds, first):
        batch = store.batch()
        for path, content in values:
            batch.put(path, content)
        batch.checkpoint(f"t{n:07d}", checkpoint)
        store.commit(batch)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=3000, help="commits per side")
    ap.add_argument("--slices", type=int, default=6, help="alternating slices per side")
    args = ap.parse_args()
    per_slice = args.batches // args.slices
    rounds = [round_values(n) for n in range(per_slice * args.slices)]
    checkpoint = os.urandom(SIZE)
    tmp = Path(tempfile.mkdtemp(prefix="reverie-bench-mem-"))
    try:
        env = lmdb.open(str(tmp / "raw"), map_size=64 << 20, sync=True, max_dbs=16)
        store = MemoryStore.open(tmp / "ours", agent="bench", sync=True)
        raw_t = ours_t = 0.0
        for s in range(args.slices):
            chunk = rounds[s * per_slice:(s + 1) * per_slice]
            raw_t += raw_slice(env, chunk, checkpoint, s * per_slice)
            ours_t += ours_slice(store, chunk, checkpoint, s * per_slice)
        stats = store.stats()
        store.close()
        env.close()
        n = per_slice * args.slices
        raw_w, ours_w = n * MEMORIES / raw_t, n * MEMORIES / ours_t
        print(machine())
        print(f"{n} commits per side, {MEMORIES} memories of ~{SIZE} B + a {SIZE} B checkpoint each, sync=True")
        print(f"raw py-lmdb : {raw_w:9,.0f} memories/s  "
              f"({n / raw_t:7,.0f} commits/s, {raw_t / n * 1e3:.3f} ms/commit)")
        print(f"reverie     : {ours_w:9,.0f} memories/s  "
              f"({n / ours_t:7,.0f} commits/s, {ours_t / n * 1e3:.3f} ms/commit)")
        print(f"ratio       : {ours_w / raw_w:.2f}x raw (target >= 0.5x)")
        print(f"store       : {stats['versions']:,} versions, {stats['used_bytes'] / 2**20:.1f} MiB used")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
