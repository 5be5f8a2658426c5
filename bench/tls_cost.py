"""What TLS costs one dream round: the dreamer's `_judge` (one candidate to three critics,
three verdicts back) over a plaintext embedded server and over a TLS one (the swarm's own CA,
as `reverie up --tls` serves), same agents, same event loop, interleaved in blocks. Decides
whether TLS can be the embedded default (goal: at most 1.2x).

    python bench/tls_cost.py [--rounds 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, summary  # noqa: E402
from bench.round_latency import CRITICS, config_for, our_round_trip  # noqa: E402
from reverie.runtime import EmbeddedNats  # noqa: E402
from reverie.runtime.natstls import ensure_server_cert  # noqa: E402


async def main(rounds: int) -> None:
    print(f"# one dream round over plaintext vs TLS, {rounds} rounds per side, interleaved in 5 blocks; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        files = ensure_server_cert(config_for("embedded", base / "tls", [], None), ["127.0.0.1"])
        async with EmbeddedNats(base / "plain") as plain, EmbeddedNats(base / "tlsnats", tls=files) as secure:
            for label, critics in CRITICS.items():
                clear: list[float] = []
                tls: list[float] = []
                block = rounds // 5
                await our_round_trip(plain.url, base / "d1", critics, 200, None)  # warm-up
                await our_round_trip(secure.url, base / "d2", critics, 200, files.ca)
                for _ in range(5):
                    clear += await our_round_trip(plain.url, base / "d1", critics, block, None)
                    tls += await our_round_trip(secure.url, base / "d2", critics, block, files.ca)
                c, s = summary(clear), summary(tls)
                print(f"{label:>12}: plaintext p50 {c['p50'] * 1e6:7.0f} us  p99 {c['p99'] * 1e6:7.0f} us | "
                      f"TLS p50 {s['p50'] * 1e6:7.0f} us  p99 {s['p99'] * 1e6:7.0f} us | "
                      f"ratio p50 {s['p50'] / c['p50']:.2f}x  p99 {s['p99'] / c['p99']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3000)
    asyncio.run(main(parser.parse_args().rounds))
