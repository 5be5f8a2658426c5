"""Gossip convergence: N in-process agents on one real nats-server; how fast a fragment spreads.

Each agent is a real `GossipNode` (its own NATS connection, its own LMDB memory, certified
keys). The bench drives synchronous rounds: in each round every node runs one anti-entropy
round (push-pull with `fanout` random peers) at once. A fragment is shared at one node; we
count rounds until every node holds it, and bytes: everything the nodes published (heads,
replies, pushes) and the block bytes alone, per delivery (N-1 deliveries per fragment).
Baseline, same run: the payload itself, delivered once to each of the N-1 peers (what a
direct raw nats-py fan-out would carry, without signatures or encryption).

    python bench/gossip_convergence.py [--sizes 8 32 64] [--trials 5] [--payload 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from reverie.runtime import EmbeddedNats
from tests.fakes.gossip import gossip_nodes, node_config

COUNTERS = ("gossip.bytes_sent", "gossip.block_bytes_sent")


async def spread(nodes: dict, origin: str, seq: int, max_rounds: int) -> int:
    rounds = 0
    while not all(n.holds(origin, seq) for n in nodes.values()):
        rounds += 1
        if rounds > max_rounds:
            raise RuntimeError(f"not converged after {max_rounds} rounds")
        await asyncio.gather(*(n.gossip_round() for n in nodes.values()))
        await asyncio.gather(*(n.settle() for n in nodes.values()))  # the pulls this round triggered
    return rounds


def sent(nodes: dict) -> dict[str, int]:
    return {c: sum(n.counters[c] for n in nodes.values()) for c in COUNTERS}


async def run(n: int, trials: int, payload: int, fanout: int, burst: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats", sync_always=False) as server:
            config = node_config(server.url, Path(tmp) / "data", [f"n{i}" for i in range(n)],
                                 interval=3600, fanout=fanout)
            async with gossip_nodes(config, server.url) as nodes:
                names = list(nodes)
                rounds, total, blocks = [], [], []
                for trial in range(trials):
                    origin = nodes[names[trial % n]]
                    before = sent(nodes)
                    for i in range(burst):
                        origin.share_memory(f"/bench/{trial}/{i}", os.urandom(payload))
                    await origin.flush()
                    seq = origin.heads()[origin.name]
                    rounds.append(await spread(nodes, origin.name, seq, max_rounds=8 * max(1, int(math.log2(n)))))
                    after = sent(nodes)
                    deliveries = (n - 1) * burst
                    total.append((after[COUNTERS[0]] - before[COUNTERS[0]]) / deliveries)
                    blocks.append((after[COUNTERS[1]] - before[COUNTERS[1]]) / deliveries)
                return {"n": n, "rounds_median": statistics.median(rounds), "rounds_max": max(rounds),
                        "target": 2 * math.log2(n), "bytes_per_delivery": statistics.fmean(total),
                        "block_bytes_per_delivery": statistics.fmean(blocks), "payload": payload}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 64])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--payload", type=int, default=1024)
    ap.add_argument("--fanout", type=int, default=2)
    ap.add_argument("--burst", type=int, nargs="+", default=[1, 100],
                    help="fragments shared at once per trial (1: one fragment; 100: heads amortised)")
    args = ap.parse_args()
    print(f"# {machine()}; fanout {args.fanout}, payload {args.payload} B, {args.trials} trials")
    print(f"{'N':>3} {'burst':>5} {'rounds p50':>10} {'max':>4} {'2log2N':>6} "
          f"{'all bytes/deliv':>15} {'ratio':>6} {'block bytes/deliv':>17} {'ratio':>6}")
    for n in args.sizes:
        for burst in args.burst:
            r = await run(n, args.trials, args.payload, args.fanout, burst)
            print(f"{n:>3} {burst:>5} {r['rounds_median']:>10g} {r['rounds_max']:>4} {r['target']:>6.1f} "
                  f"{r['bytes_per_delivery']:>15.0f} {r['bytes_per_delivery'] / args.payload:>5.2f}x "
                  f"{r['block_bytes_per_delivery']:>17.0f} {r['block_bytes_per_delivery'] / args.payload:>5.2f}x",
                  flush=True)


if __name__ == "__main__":
    asyncio.run(main())
