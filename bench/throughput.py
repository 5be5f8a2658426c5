"""End-to-end tasks per second through the whole pipeline, zero-cost reasoner.

Ours: `reverie` swarm under the Supervisor (one process each: dreamer, rule/plan/budget
critics), tasks through the JetStream work queue, one dream round each (the zero-cost
reasoner proposes a valid path, the three real critics judge it), result stored in the
results stream, task acked. Baseline: the same pipeline in raw nats-py with the same process
layout and stream settings (work-queue task stream, pull consumer, fan-out request to three
queue groups, JetStream-published result, ack), replying fixed bytes. Same server per side.

    python bench/throughput.py [--tasks 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from nats.js.api import ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RawGather, machine, raw_responder  # noqa: E402
from reverie.protocol import Decision, Task, Verdict, encode, new_id  # noqa: E402
from reverie.runtime import EmbeddedNats, Supervisor, connect  # noqa: E402

SPEC = {
    "start": "a", "goal": "c",
    "operations": [{"name": "ab", "from": "a", "to": "b", "duration": 1},
                   {"name": "bc", "from": "b", "to": "c", "duration": 1}],
}
CONCURRENCY = 64

SWARM = f"""
swarm = "bench"
[nats]
url = "embedded"
encrypt = ENCRYPT
[[agents]]
name = "dreamer"
kind = "dreamer"
concurrency = {CONCURRENCY}
[agents.options]
reasoner = "bench.common:ZeroReasoner"
[[agents]]
name = "rules"
kind = "rule-critic"
[agents.options]
harmful = ["force_push"]
[[agents]]
name = "planner"
kind = "plan-critic"
[[agents]]
name = "budget"
kind = "budget-critic"
"""


async def ours(n: int, tmp: Path, *, encrypt: bool = True) -> float:
    """`encrypt`: the embedded JetStream store encrypted at rest (the default since issue 10)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    (tmp / "swarm.toml").write_text(SWARM.replace("ENCRYPT", str(encrypt).lower()))
    from reverie.runtime import load_config

    config = load_config(tmp / "swarm.toml", data_dir=tmp / f"ours-{encrypt}")
    with await asyncio.to_thread(open, tmp / "ours.log", "w") as log:
        async with Supervisor(config, out=log), connect(config) as swarm:
            await swarm.submit(SPEC, kind="plan", timeout=60)  # warm-up
            tasks = [Task(id=new_id(), kind="plan", input=SPEC) for _ in range(n)]
            began = time.perf_counter()
            results = await swarm.submit_many(tasks, timeout=300)
            elapsed = time.perf_counter() - began
            bad = [r for r in results if r.status.value != "accepted"]
            assert not bad, bad[0]
    return n / elapsed


def raw_role(role: str, url: str) -> None:
    async def critic(i: int) -> None:
        reply = encode(Verdict(candidate_id="0123456789abcdef", critic=f"c{i}", decision=Decision.ACCEPT))
        await raw_responder(url, "rawb.dream.*.cand", f"q{i}", reply)
        await asyncio.Event().wait()

    async def dreamer() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        gather = await RawGather(nc, expect=3).start()
        psub = await js.pull_subscribe("rawb.task.>", durable="dreamer", stream="RAWB_TASKS",
                                       config=ConsumerConfig(ack_wait=30, max_ack_pending=256))
        sem = asyncio.Semaphore(CONCURRENCY)
        working: set[asyncio.Task[None]] = set()

        async def work(msg: Any) -> None:
            try:
                async with asyncio.timeout(5.0):
                    await gather.request("rawb.dream.t.cand", msg.data)
                task_id = msg.subject.rpartition(".")[2]
                await js.publish(f"rawb.result.{task_id}", msg.data, headers={"Nats-Msg-Id": f"r:{task_id}"})
                await msg.ack()
            finally:
                sem.release()

        while True:
            await sem.acquire()
            free = sem._value + 1
            try:
                msgs = await psub.fetch(batch=free, timeout=0.5)
            except TimeoutError:
                sem.release()
                continue
            for j, msg in enumerate(msgs):
                if j:
                    await sem.acquire()
                job = asyncio.create_task(work(msg))
                working.add(job)
                job.add_done_callback(working.discard)
            if not msgs:
                sem.release()

    if role == "dreamer":
        asyncio.run(dreamer())
    else:
        asyncio.run(critic(int(role[-1])))


async def raw(n: int, tmp: Path) -> float:
    async with EmbeddedNats(tmp / "raw") as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="RAWB_TASKS", subjects=["rawb.task.>"],
                                         retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE,
                                         duplicate_window=120))
        await js.add_stream(StreamConfig(name="RAWB_RESULTS", subjects=["rawb.result.>"],
                                         storage=StorageType.FILE, max_msgs_per_subject=1, duplicate_window=120))
        procs = [await asyncio.create_subprocess_exec(sys.executable, __file__, "--role", role, "--url", server.url)
                 for role in ("critic0", "critic1", "critic2")]
        try:
            probe = await RawGather(nc, expect=3).start()
            while True:  # the raw dreamer starts once all three raw critics answer
                try:
                    async with asyncio.timeout(0.2):
                        await probe.request("rawb.dream.probe.cand", b"")
                    break
                except TimeoutError:
                    continue
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--role", "dreamer", "--url", server.url))
            done = asyncio.Event()
            warm = asyncio.Event()
            seen: set[str] = set()
            expected = n + 1

            async def on_result(msg: Any) -> None:
                seen.add(msg.subject)
                if msg.subject == "rawb.result.warmup":
                    warm.set()
                if len(seen) >= expected:
                    done.set()

            await nc.subscribe("rawb.result.>", cb=on_result)
            payload = encode(Task(id="x", kind="plan", input=SPEC))
            await js.publish("rawb.task.warmup", payload, headers={"Nats-Msg-Id": "warmup"})
            await warm.wait()
            ids = [new_id() for _ in range(n)]
            began = time.perf_counter()
            for i in range(0, n, 500):
                await asyncio.gather(*(js.publish(f"rawb.task.{t}", payload, headers={"Nats-Msg-Id": t})
                                       for t in ids[i:i + 500]))
            await asyncio.wait_for(done.wait(), 300)
            elapsed = time.perf_counter() - began
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                await p.wait()
            await nc.close()
    return n / elapsed


async def main(n: int) -> None:
    print(f"# end-to-end tasks/s, {n} tasks per side, dreamer concurrency {CONCURRENCY}; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        r = await raw(n, Path(tmp))
        o = await ours(n, Path(tmp))
        plain = await ours(n, Path(tmp), encrypt=False)
    print(f"raw nats-py pipeline {r:8.0f} tasks/s | reverie {o:8.0f} tasks/s | ratio {o / r:.2f}x")
    print(f"reverie, JetStream store not encrypted {plain:8.0f} tasks/s | ratio {plain / r:.2f}x "
          f"(encryption at rest costs {1 - o / plain:.0%})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--role")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.role:
        raw_role(args.role, args.url)
    else:
        asyncio.run(main(args.tasks))
