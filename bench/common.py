"""Shared helpers for the benchmarks: percentiles, machine description, free-standing agents."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats

from reverie.protocol import Candidate, Decision, Task, Verdict
from reverie.runtime import Agent, handler


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": pct(samples, 50), "p99": pct(samples, 99), "mean": statistics.fmean(samples)}


async def interleaved(label: str, sides: dict[str, Callable[[int], Awaitable[list[float]]]], rounds: int,
                      blocks: int = 5, warmup: int = 200) -> str:
    """Run each side (a function of a round count returning latencies) warm, then in `blocks`
    alternating blocks, and say p50/p99 of each and of the second over the first."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for run in sides.values():
        await run(warmup)
    for _ in range(blocks):
        for name, run in sides.items():
            samples[name] += await run(rounds // blocks)
    (a, sa), (b, sb) = [(name, summary(s)) for name, s in samples.items()]
    return (f"{label:>12}: {a} p50 {sa['p50'] * 1e6:7.0f} us  p99 {sa['p99'] * 1e6:7.0f} us | "
            f"{b} p50 {sb['p50'] * 1e6:7.0f} us  p99 {sb['p99'] * 1e6:7.0f} us | "
            f"ratio p50 {sb['p50'] / sa['p50']:.2f}x  p99 {sb['p99'] / sa['p99']:.2f}x")


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d')}")


class AcceptAll(Agent):
    """A zero-cost critic: accepts everything. Isolates the runtime's own cost."""

    role = "critic"

    @handler("dream.*.cand", concurrency=16)
    async def judge(self, cand: Candidate) -> Verdict:
        return Verdict(candidate_id=cand.id, critic=self.ctx.name, decision=Decision.ACCEPT, score=1.0)


class ZeroReasoner:
    """A zero-cost reasoner: proposes the spec's operations, in order, as the path."""

    async def propose(self, task: Task, round: int, k: int, history: object, lessons: object = ()) -> list[object]:
        from reverie.agents.reasoners import Proposal

        steps = tuple(op["name"] for op in task.input["operations"])
        return [Proposal(steps=steps, text=" -> ".join(steps), answer={"steps": list(steps)})]


async def raw_responder(url: str, subject: str, queue: str, reply: bytes) -> Any:
    """A raw nats-py critic: answers every request on `subject` with fixed bytes."""
    nc = await nats.connect(url)

    async def respond(msg: Any) -> None:
        await nc.publish(msg.reply, reply)

    await nc.subscribe(subject, queue=queue, cb=respond)
    await nc.flush()
    return nc


class RawGather:
    """Raw nats-py fan-out request: one muxed inbox, wait until `expect` replies arrived."""

    def __init__(self, nc: Any, expect: int) -> None:
        self.nc = nc
        self.expect = expect
        self.prefix = nc.new_inbox()
        self.pending: dict[str, list[Any]] = {}
        self.counter = 0

    async def start(self) -> RawGather:
        await self.nc.subscribe(f"{self.prefix}.*", cb=self._on_reply)
        return self

    async def _on_reply(self, msg: Any) -> None:
        slot = self.pending.get(msg.subject.rpartition(".")[2])
        if slot is not None:
            slot[0] += 1
            if slot[0] == self.expect:
                slot[1].set()

    async def request(self, subject: str, payload: bytes) -> None:
        """Send one request; return once `expect` replies came (bound it with `asyncio.timeout`)."""
        self.counter += 1
        token = str(self.counter)
        slot = self.pending[token] = [0, asyncio.Event()]
        try:
            await self.nc.publish(subject, payload, reply=f"{self.prefix}.{token}")
            await slot[1].wait()
        finally:
            del self.pending[token]
