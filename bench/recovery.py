"""Recovery: time from a dreamer SIGKILL to its first resumed round.

Ours: a swarm under the Supervisor (restart_backoff 0.2 s) dreams a multi-round task; after
two committed rounds the dreamer process is SIGKILLed; we time until the restarted dreamer
announces the resumed round (`rv.<swarm>.events.task.<id>`), which it does right after loading
the checkpoint, before reasoning. Baseline, same run: a raw nats-py JetStream consumer (same
ack_wait as reverie's task consumers) is SIGKILLed holding a task; a fresh consumer process
gets the task again only when the server redelivers it.

    python bench/recovery.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, RetentionPolicy, StreamConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, summary  # noqa: E402
from reverie.protocol import Budget, Codec, Task, TaskInfo, TaskState, new_id  # noqa: E402
from reverie.runtime import EmbeddedNats, Supervisor, connect, load_config  # noqa: E402
from reverie.runtime.cli.demo import packaged_config  # noqa: E402
from reverie.runtime.host.durable import ACK_WAIT  # noqa: E402
from reverie.runtime.swarm.supervisor import STABLE_AFTER  # noqa: E402

TASK = json.loads((ROOT / "tests" / "data" / "long-haul.json").read_text()) | {"simulate_latency": 0.5}


def fresh_task() -> dict:
    """The long-haul task with new operation names: the dreamer's recalled lessons from the
    previous run would otherwise solve it in round 1, leaving nothing to resume."""
    tag = new_id()[:6]
    text = json.dumps(TASK).replace("train_", f"train{tag}_")
    return json.loads(text)


async def ours(runs: int, tmp: Path) -> list[float]:
    # the packaged local swarm, as `reverie demo` runs it (default restart backoff, 0.5 s)
    config = load_config(packaged_config(), data_dir=tmp / "data")
    samples = []
    with await asyncio.to_thread(open, tmp / "swarm.log", "w") as log:
        async with Supervisor(config, out=log) as sup, connect(config) as swarm:
            codec: Codec[TaskInfo] = Codec(TaskInfo)
            while len(samples) < runs:
                task = Task(id=new_id(), kind="plan", input=fresh_task(),
                            budget=Budget(max_rounds=8, max_seconds=60, candidates_per_round=1))
                resumed = asyncio.Event()

                async def on_event(msg, resumed=resumed):
                    if codec.decode(msg.data).state is TaskState.RUNNING:
                        resumed.set()

                sub = await swarm.bus.nc.subscribe(swarm.bus.subjects.rel(f"events.task.{task.id}"), cb=on_event)
                await swarm.publish(task)
                info = await swarm.task_info(task.id, timeout=0.1)
                while not (info.state is TaskState.RUNNING and info.rounds >= 2) and info.state is not TaskState.DONE:
                    info = await swarm.task_info(task.id, timeout=0.1)
                if info.state is TaskState.DONE:  # finished before we could kill it: not a sample
                    await sub.unsubscribe()
                    continue
                assert [r.name for r in sup.replicas].count("dreamer") == 1
                pid = sup.processes()["dreamer"]
                assert pid is not None
                killed = time.perf_counter()
                os.kill(pid, signal.SIGKILL)
                await asyncio.wait_for(resumed.wait(), 60)
                samples.append(time.perf_counter() - killed)
                await swarm.result(task.id, timeout=60)
                await sub.unsubscribe()
                # an isolated crash each time: outlive the supervisor's crash-loop window
                await asyncio.sleep(STABLE_AFTER + 0.5)
    return samples


RAW_CONSUMER = """
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    psub = await nc.jetstream().pull_subscribe("rawr.task", durable="w", stream="RAWR")
    while True:
        try:
            msgs = await psub.fetch(1, timeout=1)
        except asyncio.TimeoutError:
            continue
        print("got", flush=True)
asyncio.run(main())
"""


async def raw(tmp: Path) -> float:
    async with EmbeddedNats(tmp / "raw") as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="RAWR", subjects=["rawr.task"], retention=RetentionPolicy.WORK_QUEUE))
        await js.add_consumer("RAWR", ConsumerConfig(durable_name="w", ack_wait=ACK_WAIT))
        await js.publish("rawr.task", b"task")

        def consumer() -> subprocess.Popen[str]:
            return subprocess.Popen([sys.executable, "-c", RAW_CONSUMER, server.url], stdout=subprocess.PIPE, text=True)

        first = consumer()
        assert first.stdout is not None and first.stdout.readline().strip() == "got"
        killed = time.perf_counter()
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = consumer()
        assert second.stdout is not None
        line = await asyncio.to_thread(second.stdout.readline)
        elapsed = time.perf_counter() - killed
        assert line.strip() == "got"
        second.kill()
        second.wait()
        await nc.close()
    return elapsed


async def main(runs: int) -> None:
    print(f"# recovery after SIGKILL, {runs} runs; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = await raw(Path(tmp))
        samples = await ours(runs, Path(tmp))
    s = summary(samples)
    print(f"raw JetStream redelivery {base:6.2f} s | reverie resumed round p50 {s['p50']:.2f} s, "
          f"max {max(samples):.2f} s | ratio p50 {s['p50'] / base:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
