"""One dream round: one candidate to three critics, three verdicts back.

Baseline: raw nats-py doing the same fan-out request (one publish with a muxed reply inbox,
three responders in distinct queue groups, wait for three replies) with the same payload
bytes. Ours: the dreamer's own `Jury.judge` (encode the Candidate, Bus.request_many, decode three
Verdicts, quorum) against three real agent hosts. Same server, same event loop, interleaved.

    python bench/round_latency.py [--rounds 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import nats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RawGather, interleaved, machine, raw_responder
from reverie.protocol import Candidate, Task, encode, new_id
from reverie.runtime import EmbeddedNats, parse_config, serve_agent

SPEC = {
    "start": "live", "goal": "done",
    "operations": [
        {"name": "backup", "from": "live", "to": "backed_up", "duration": 10},
        {"name": "migrate", "from": "backed_up", "to": "migrated", "duration": 15},
        {"name": "verify", "from": "migrated", "to": "done", "duration": 5},
    ],
    "constraints": {"time_budget": 60, "required": ["backup"], "before": [["backup", "migrate"]]},
}

CRITICS = {
    "accept-all": ['"bench.common:AcceptAll"'] * 3,
    "plan critics": ['"rule-critic"', '"plan-critic"', '"budget-critic"'],
}


def config_for(url: str, data: Path, critics: list[str], ca: Path | None = None):
    """A dreamer and `critics` on the server at `url` (`ca`: the CA of a TLS server)."""
    agents = '[[agents]]\nname = "dreamer"\nkind = "dreamer"\n[agents.options]\nverdict_timeout = 5.0\n'
    for i, kind in enumerate(critics):
        agents += f'[[agents]]\nname = "c{i}"\nkind = {kind}\n'
    ca_line = f'ca_file = "{ca}"\n' if ca else ""
    return parse_config(f'swarm = "bench"\n[nats]\nurl = "{url}"\n{ca_line}{agents}', data_dir=data)


async def raw_round_trip(url: str, payload: bytes, reply: bytes, rounds: int) -> list[float]:
    responders = [await raw_responder(url, "raw.dream.t.cand", f"q{i}", reply) for i in range(3)]
    nc = await nats.connect(url)
    gather = await RawGather(nc, expect=3).start()
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        async with asyncio.timeout(5.0):
            await gather.request("raw.dream.t.cand", payload)
        samples.append(time.perf_counter() - t)
    for c in [nc, *responders]:
        await c.close()
    return samples


async def our_round_trip(url: str, data: Path, critics: list[str], rounds: int,
                         ca: Path | None = None) -> list[float]:
    config = config_for(url, data, critics, ca)
    async with serve_agent(config, "dreamer", servers=[url]) as dreamer, \
            serve_agent(config, "c0", servers=[url]), serve_agent(config, "c1", servers=[url]), \
            serve_agent(config, "c2", servers=[url]):
        agent = dreamer.agent
        task = Task(id="t", kind="plan", input=SPEC)
        samples = []
        for _ in range(rounds):
            cand = Candidate(id=new_id(), task=task, round=1, index=0,
                             steps=("backup", "migrate", "verify"), text="backup -> migrate -> verify")
            t = time.perf_counter()
            judged = await agent.jury.judge(cand, budget_left=5.0)
            samples.append(time.perf_counter() - t)
            assert len(judged.verdicts) == 3, judged
    return samples


async def main(rounds: int) -> None:
    task = Task(id="t", kind="plan", input=SPEC)
    payload = encode(Candidate(id=new_id(), task=task, round=1, index=0, steps=("backup", "migrate", "verify"),
                               text="backup -> migrate -> verify"))
    from reverie.protocol import Decision, Verdict

    reply = encode(Verdict(candidate_id="0123456789abcdef", critic="c0", decision=Decision.ACCEPT, score=1.0))
    print(f"# one dream round, {rounds} rounds per side, interleaved in 5 blocks; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            for label, critics in CRITICS.items():
                print(await interleaved(label, {
                    "raw nats-py": lambda n: raw_round_trip(server.url, payload, reply, n),
                    "reverie": lambda n, critics=critics: our_round_trip(server.url, Path(tmp) / "d", critics, n),
                }, rounds))

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3000)
    asyncio.run(main(parser.parse_args().rounds))
