"""Gossip fragment ingest: verify + decrypt on one core, one signature per block vs per fragment.

Ours: blocks of 64 fragments (~200 B payload each) from one certified author, received as wire
bytes: `decode_block`, `decode_fragment` for each fragment, `FeedVerifier.admit` (certificate,
one Ed25519 verification, chain, seq, a sha256 per fragment), then `ContentKeyring.open` for
each fragment. Baseline, same run, same fragments: each fragment individually signed with
Ed25519; per fragment, verify its signature, decode it, and open it with the same keyring.

    python bench/gossip_ingest.py [--blocks 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reverie.runtime.gossip import (
    AgentKeys,
    ContentKey,
    ContentKeyring,
    FeedVerifier,
    FeedWriter,
    SwarmKey,
    Trust,
    decode_block,
    decode_fragment,
    encode_block,
    encode_fragment,
    issue,
)

FRAGMENTS_PER_BLOCK = 64
PAYLOAD_BYTES = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    now = time.time()
    swarm, alice = SwarmKey.generate(), AgentKeys.generate()
    cert = issue(swarm, alice, "alice", ("dreamer",), 86_400, now=now)
    key = ContentKey.generate("k1")
    ring = ContentKeyring()
    ring.install(key.key_id, key.key)

    writer = FeedWriter("alice", alice)
    wire: list[tuple[bytes, list[bytes]]] = []
    for _ in range(args.blocks):
        block, fragments = writer.append([os.urandom(PAYLOAD_BYTES) for _ in range(FRAGMENTS_PER_BLOCK)], key)
        wire.append((encode_block(block), [encode_fragment(f) for f in fragments]))
    # baseline wire: signature || fragment, one signature per fragment
    single = [alice.sign(f) + f for _, frags in wire for f in frags]
    total = args.blocks * FRAGMENTS_PER_BLOCK

    def ours() -> float:
        trust = Trust(swarm.public_bytes)
        trust.add(cert, now)
        verifier = FeedVerifier(trust)
        start = time.perf_counter()
        opened = 0
        for block_bytes, fragment_bytes in wire:
            admitted = verifier.admit(decode_block(block_bytes), [decode_fragment(f) for f in fragment_bytes], now)
            for fragment in admitted:
                ring.open(fragment)
                opened += 1
        elapsed = time.perf_counter() - start
        assert opened == total
        return total / elapsed

    def baseline() -> float:
        public = Ed25519PublicKey.from_public_bytes(alice.signing_public)
        start = time.perf_counter()
        opened = 0
        for signed in single:
            body = signed[64:]
            public.verify(signed[:64], body)
            ring.open(decode_fragment(body))
            opened += 1
        elapsed = time.perf_counter() - start
        assert opened == total
        return total / elapsed

    print(f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"cryptography {cryptography.__version__}")
    print(f"{args.blocks} blocks x {FRAGMENTS_PER_BLOCK} fragments x {PAYLOAD_BYTES} B payload "
          f"= {total} fragments per run")
    print("| run | baseline (per-fragment Ed25519) | ours (per-block) | ratio |")
    print("|---|---|---|---|")
    for run in range(1, args.runs + 1):
        b, o = baseline(), ours()
        print(f"| {run} | {b:,.0f} fragments/s | {o:,.0f} fragments/s | {o / b:.1f}x |")


async def _stored(blocks: int, runs: int) -> None:
    """Verify, decrypt and store: a `GossipNode` admitting replies of 8 blocks into its LMDB
    memory (durable commits; block, fragments, head and each payload's memory sealed at rest)
    against per-fragment Ed25519 verify + decrypt + a raw lmdb put, one durable txn per 8 x 64."""
    import asyncio  # noqa: F401 - run by the caller's loop
    import tempfile

    import lmdb

    from reverie.runtime import parse_config
    from reverie.runtime.gossip.keystore import KeyStore
    from reverie.runtime.gossip.node import GossipNode
    from reverie.runtime.gossip.wire import Carried, MemoryShare, encode_payload
    from reverie.runtime.memory import Memory

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = parse_config('swarm = "ing"\n[[agents]]\nname = "alice"\nkind = "rule-critic"\n'
                              '[[agents]]\nname = "bob"\nkind = "rule-critic"\n', data_dir=root / "data")
        store = KeyStore(config.data_path / "keys")
        store.init({"alice": ("critic",), "bob": ("critic",)})
        alice = AgentKeys.load(store.root / "agents" / "alice")
        key = store.keyring("alice").current()
        writer = FeedWriter("alice", alice)
        wire = []
        for i in range(blocks):
            payloads = [encode_payload(MemoryShare(f"/b/{i}/{j}", os.urandom(PAYLOAD_BYTES)))
                        for j in range(FRAGMENTS_PER_BLOCK)]
            block, fragments = writer.append(payloads, key)
            wire.append(Carried(encode_block(block), [encode_fragment(f) for f in fragments]))
        single = [alice.sign(f) + f for c in wire for f in c.fragments]
        ring = store.keyring("bob")
        total = blocks * FRAGMENTS_PER_BLOCK
        reply = 8

        async def ours(run: int) -> float:
            memory = await Memory.open(root / f"bob{run}", agent="bob")
            node = GossipNode(name="bob", config=config, bus=None, memory=memory,  # type: ignore[arg-type]
                              keystore=store, peers=["alice"])
            start = time.perf_counter()
            for i in range(0, len(wire), reply):
                admitted, refused = await node._admit(wire[i:i + reply], "alice")
                assert refused == 0 and admitted == len(wire[i:i + reply])
            elapsed = time.perf_counter() - start
            await memory.close()
            return total / elapsed

        def baseline(run: int) -> float:
            env = lmdb.open(str(root / f"raw{run}"), map_size=1 << 30)
            public = Ed25519PublicKey.from_public_bytes(alice.signing_public)
            start = time.perf_counter()
            for i in range(0, len(single), reply * FRAGMENTS_PER_BLOCK):
                with env.begin(write=True) as txn:
                    for signed in single[i:i + reply * FRAGMENTS_PER_BLOCK]:
                        body = signed[64:]
                        public.verify(signed[:64], body)
                        fragment = decode_fragment(body)
                        txn.put(f"{fragment.author}/{fragment.seq:012d}".encode(), ring.open(fragment))
            elapsed = time.perf_counter() - start
            env.close()
            return total / elapsed

        print(f"\nverify + decrypt + store (durable LMDB), replies of {reply} blocks, {total} fragments per run")
        print("| run | baseline (per-fragment Ed25519, raw lmdb put) | ours (GossipNode admit into memory) | ratio |")
        print("|---|---|---|---|")
        for run in range(1, runs + 1):
            b, o = baseline(run), await ours(run)
            print(f"| {run} | {b:,.0f} fragments/s | {o:,.0f} fragments/s | {o / b:.1f}x |")


if __name__ == "__main__":
    main()
    import asyncio

    asyncio.run(_stored(100, 3))
