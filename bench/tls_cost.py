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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, summary  # noqa: E402
from bench.round_latency import CRITICS, SPEC  # noqa: E402
from reverie.protocol import Candidate, Task, new_id  # noqa: E402
from reverie.runtime import EmbeddedNats, parse_config, serve_agent  # noqa: E402
from reverie.runtime.natstls import ensure_server_cert  # noqa: E402


def config_for(url: str, data: Path, critics: list[str], ca: Path | None):
    agents = '[[agents]]\nname = "dreamer"\nkind = "dreamer"\n[agents.options]\nverdict_timeout = 5.0\n'
    for i, kind in enumerate(critics):
        agents += f'[[agents]]\nname = "c{i}"\nkind = {kind}\n'
    ca_line = f'ca_file = "{ca}"\n' if ca else ""
    return parse_config(f'swarm = "bench"\n[nats]\nurl = "{url}"\n{ca_line}{agents}', data_dir=data)


async def rounds_on(url: str, data: Path, critics: list[str], rounds: int, ca: Path | None) -> list[float]:
    config = config_for(url, data, critics, ca)
    async with serve_agent(config, "dreamer", servers=[url]) as dreamer, \
            serve_agent(config, "c0", servers=[url]), serve_agent(config, "c1", servers=[url]), \
            serve_agent(config, "c2", servers=[url]):
        task = Task(id="t", kind="plan", input=SPEC)
        samples = []
        for _ in range(rounds):
            cand = Candidate(id=new_id(), task=task, round=1, index=0, steps=("backup", "migrate", "verify"),
                             text="backup -> migrate -> verify")
            t = time.perf_counter()
            judged = await dreamer.agent._judge(cand, 5.0)
            samples.append(time.perf_counter() - t)
            assert len(judged.verdicts) == 3, judged
    return samples


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
                await rounds_on(plain.url, base / "d1", critics, 200, None)  # warm-up
                await rounds_on(secure.url, base / "d2", critics, 200, files.ca)
                for _ in range(5):
                    clear += await rounds_on(plain.url, base / "d1", critics, block, None)
                    tls += await rounds_on(secure.url, base / "d2", critics, block, files.ca)
                c, s = summary(clear), summary(tls)
                print(f"{label:>12}: plaintext p50 {c['p50'] * 1e6:7.0f} us  p99 {c['p99'] * 1e6:7.0f} us | "
                      f"TLS p50 {s['p50'] * 1e6:7.0f} us  p99 {s['p99'] * 1e6:7.0f} us | "
                      f"ratio p50 {s['p50'] / c['p50']:.2f}x  p99 {s['p99'] / c['p99']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3000)
    asyncio.run(main(parser.parse_args().rounds))
