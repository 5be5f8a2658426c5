"""Shared helpers for the benchmarks: percentiles, machine description, free-standing agents."""

from __future__ import annotations

import os
import platform
import statistics
import time

import msgspec

from reverie.protocol import Candidate, Decision, Task, Verdict
from reverie.runtime import Agent, handler


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": pct(samples, 50), "p99": pct(samples, 99), "mean": statistics.fmean(samples)}


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

    async def propose(self, task: Task, round: int, k: int, history: object) -> list[object]:
        from reverie.agents.reasoners import Proposal

        steps = tuple(op["name"] for op in task.input["operations"])
        return [Proposal(steps=steps, text=" -> ".join(steps), answer={"steps": list(steps)})]


def to_json(obj: object) -> str:
    return msgspec.json.encode(obj).decode()
