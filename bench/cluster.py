"""A swarm on a 3-node NATS cluster with R3 streams, against the single embedded server.

Throughput: tasks per second end to end (the zero-cost reasoner, the three plan critics; one
process per agent under the Supervisor), on the embedded server (the default: NKey auth,
JetStream encrypted at rest, fsync always) and on a 3-node cluster on loopback (NKey auth, TLS
for clients, fsync always on every node, task queue, results and task-control bucket on 3
nodes each). Same machine, same run.

Failover: while tasks keep flowing, SIGKILL the node that leads the results stream, and time
how long until the results stream stores the next result; restart the node; repeat.

    python bench/cluster.py [--tasks 2000] [--kills 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nats.errors

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from bench.throughput import SPEC, SWARM  # noqa: E402
from reverie.protocol import Task, new_id  # noqa: E402
from reverie.runtime import Supervisor, connect, load_config  # noqa: E402
from tests.cluster import running_cluster  # noqa: E402

AGENTS = SWARM.split("[[agents]]", 1)[1]
CLUSTER = f'swarm = "bench"\n[streams]\nreplicas = 3\n[[agents]]{AGENTS}'


async def _rate(config: object, n: int, log: object) -> float:
    async with Supervisor(config, out=log), connect(config) as swarm:  # type: ignore[arg-type]
        await swarm.submit(SPEC, kind="plan", timeout=60)  # warm-up
        tasks = [Task(id=new_id(), kind="plan", input=SPEC) for _ in range(n)]
        began = time.perf_counter()
        results = await swarm.submit_many(tasks, timeout=600)
        elapsed = time.perf_counter() - began
        assert all(r.status.value == "accepted" for r in results)
    return n / elapsed


async def embedded(n: int, tmp: Path) -> float:
    (tmp / "embedded.toml").write_text(SWARM.replace("ENCRYPT", "true"))
    config = load_config(tmp / "embedded.toml", data_dir=tmp / "embedded")
    with (tmp / "embedded.log").open("w") as log:
        return await _rate(config, n, log)


async def clustered(n: int, kills: int, tmp: Path) -> tuple[float, list[float]]:
    (tmp / "cluster").mkdir()
    async with running_cluster(CLUSTER, tmp / "cluster") as (cluster, config):
        with (tmp / "cluster.log").open("w") as log:
            rate = await _rate(config, n, log)
            async with Supervisor(config, out=log), connect(config) as swarm:
                return rate, await _failovers(cluster, swarm, kills)


async def _failovers(cluster: object, swarm: object, kills: int) -> list[float]:
    bus = swarm.bus  # type: ignore[attr-defined]
    stream, js = bus.subjects.results_stream, bus.nc.jetstream(timeout=0.2)
    feeding = True

    async def feed() -> None:  # a steady trickle of tasks, a few in flight at a time
        while feeding:
            await asyncio.gather(*(swarm.submit(SPEC, kind="plan", timeout=120)  # type: ignore[attr-defined]
                                   for _ in range(8)))

    async def last_seq() -> int | None:
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            return int((await js.stream_info(stream)).state.last_seq)
        return None

    feeder = asyncio.create_task(feed())
    times = []
    try:
        for _ in range(kills):
            info = await bus.js.stream_info(stream)
            leader = cluster.index(info.cluster.leader)  # type: ignore[attr-defined]
            before = info.state.last_seq
            killed = time.monotonic()
            await cluster.kill(leader)  # type: ignore[attr-defined]
            while True:  # polled: during the election the stream answers nothing, which is what this times
                seq = await last_seq()
                if seq is not None and seq > before:
                    break
                await asyncio.sleep(0.02)
            times.append(time.monotonic() - killed)
            await cluster.restart(leader)  # type: ignore[attr-defined]
            await asyncio.sleep(5)  # the node catches up before the next kill
    finally:
        feeding = False
        await asyncio.wait_for(feeder, 180)
    return times


async def main(n: int, kills: int) -> None:
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    print(f"# a swarm on a 3-node R3 cluster vs the embedded server, {n} tasks per side; {machine()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        single = await embedded(n, tmp)
        rate, failovers = await clustered(n, kills, tmp)
    print(f"embedded server {single:8.0f} tasks/s | 3-node R3 cluster {rate:8.0f} tasks/s | ratio {rate / single:.2f}x")
    print(f"SIGKILL of the results leader's node -> next stored result: "
          f"{', '.join(f'{t:.2f}' for t in failovers)} s (median {statistics.median(failovers):.2f} s, "
          f"max {max(failovers):.2f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.kills))
