"""What TLS costs one dream round: the dreamer's `Jury.judge` (one candidate to three critics,
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

from bench.common import interleaved, machine
from bench.round_latency import CRITICS, config_for, our_round_trip
from reverie.runtime import EmbeddedNats
from reverie.runtime.swarm.tls import ensure_server_cert


async def main(rounds: int) -> None:
    print(f"# one dream round over plaintext vs TLS, {rounds} rounds per side, interleaved in 5 blocks; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        files = ensure_server_cert(config_for("embedded", base / "tls", [], None), ["127.0.0.1"])
        async with EmbeddedNats(base / "plain") as plain, EmbeddedNats(base / "tlsnats", tls=files) as secure:
            for label, critics in CRITICS.items():
                print(await interleaved(label, {
                    "plaintext": lambda n, critics=critics: our_round_trip(plain.url, base / "d1", critics, n),
                    "TLS": lambda n, critics=critics: our_round_trip(secure.url, base / "d2", critics, n, files.ca),
                }, rounds))

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3000)
    asyncio.run(main(parser.parse_args().rounds))
