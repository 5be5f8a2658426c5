"""What a 5-round task costs on Claude: prompt caching and the Message Batches API.

Drives the real `ClaudeReasoner` (real `AsyncAnthropic` client) against the fake Messages API
of `tests/fake_anthropic.py`, which reports usage by Anthropic's caching rules on its token
approximation (ceil(chars / 4) per block; prefixes under 1,024 tokens are not cached, as for
Sonnet and Opus). Each round proposes 3 candidates that critics reject with reasons, which
the next round's prompt carries, as in a real dream; 20 lessons are recalled.

Runs, same work each: baseline = the same prompts with every `cache_control` removed (what a
framework without caching sends); ours sync = cached; ours batch = cached, through batches.
Costs by the price table (Sonnet 5.5: $2 / $10 per MTok; cache write 1.25x, read 0.1x input;
batches half price).

    python bench/claude_cost.py [--rounds 5] [--tasks 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reverie.agents.claude import reasoner as claude_reasoner  # noqa: E402
from reverie.agents.claude.client import ClaudeOptions  # noqa: E402
from reverie.agents.claude.reasoner import ClaudeReasoner  # noqa: E402
from reverie.protocol import (  # noqa: E402
    Candidate, Decision, JudgedCandidate, Reason, RoundTrace, Task, Usage, Verdict,
)
from tests.fake_anthropic import FakeAnthropic, Reply  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OPS = ["enable_read_only", "backup", "migrate", "verify_checksums", "switch_traffic", "archive_old_tables"]


def _lessons() -> list[Reason]:
    return [Reason(code="missing_required", text=f"lesson {i}: required operation 'backup' was missing before "
                   f"step {i} of an earlier migration plan", ops=("backup",)) for i in range(20)]


def _reply(round: int, k: int) -> Reply:
    return Reply.tools("propose_candidate", [
        {"steps": OPS[: 3 + (round + i) % 3], "rationale": f"round {round} candidate {i}: keeps the backup "
                                                          "before the migration and verifies checksums"}
        for i in range(k)])


def _judge(task: Task, round: int, proposals: list[Any]) -> RoundTrace:
    judged = []
    for i, p in enumerate(proposals):
        cand = Candidate(id=f"{task.id}-{round}-{i}", task=task, round=round, index=i, steps=p.steps, text=p.text)
        verdicts = tuple(Verdict(candidate_id=cand.id, critic=c, decision=Decision.REJECT, reasons=(
            Reason(code="order", text=f"{c}: 'verify_checksums' must come before 'switch_traffic' "
                                      f"(round {round}, #{i + 1})", ops=("verify_checksums",)),))
                         for c in ("rules", "planner", "budget"))
        judged.append(JudgedCandidate(candidate=cand, verdicts=verdicts, outcome=Decision.REJECT))
    return RoundTrace(round=round, candidates=tuple(judged), elapsed=0.0)


async def _task(reasoner: ClaudeReasoner, fake: FakeAnthropic, task: Task, rounds: int, k: int) -> list[Usage]:
    history: list[RoundTrace] = []
    used: list[Usage] = []
    for rnd in range(1, rounds + 1):
        fake.script(_reply(rnd, k))
        out = await reasoner.propose(task, rnd, k, history, _lessons())
        assert out.usage is not None and not any(p.invalid for p in out.proposals)
        used.append(out.usage)
        history.append(_judge(task, rnd, out.proposals))
    return used


async def run(mode: str, *, cache: bool, rounds: int, tasks: int, k: int = 3) -> list[list[Usage]]:
    os.environ["REVERIE_BENCH_KEY"] = "bench"
    spec = json.loads((ROOT / "deploy" / "tasks" / "db-migration.json").read_text())
    original = claude_reasoner._cached
    if not cache:
        claude_reasoner._cached = lambda block: block  # type: ignore[assignment]
    try:
        with FakeAnthropic(min_cache_tokens=1024) as fake:
            options = ClaudeOptions(model="claude-sonnet-5-5", base_url=fake.url, api_key_env="REVERIE_BENCH_KEY",
                                    mode=mode, batch_poll=0.01)  # type: ignore[arg-type]
            reasoner = ClaudeReasoner(options)
            try:
                return [await _task(reasoner, fake, Task(id=f"t{i}", kind="plan", input=spec), rounds, k)
                        for i in range(tasks)]
            finally:
                await reasoner.close()
    finally:
        claude_reasoner._cached = original


def _sum(usages: list[Usage]) -> Usage:
    return sum(usages[1:], usages[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=3)
    args = parser.parse_args()
    print(f"# {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{args.tasks} tasks x {args.rounds} rounds x 3 candidates, claude-sonnet-5-5 prices")
    results = {
        "baseline (no cache_control), sync": asyncio.run(run("sync", cache=False, rounds=args.rounds, tasks=args.tasks)),
        "ours, sync (cached)": asyncio.run(run("sync", cache=True, rounds=args.rounds, tasks=args.tasks)),
        "ours, batch (cached)": asyncio.run(run("batch", cache=True, rounds=args.rounds, tasks=args.tasks)),
    }
    print(f"{'run':36} {'prompt tok':>10} {'cache read r2+':>14} {'share r2+':>9} {'output tok':>10} "
          f"{'cost USD':>9} {'vs baseline':>11}")
    base_cost = _sum([u for t in results["baseline (no cache_control), sync"] for u in t]).cost_usd or 0.0
    costs: dict[str, float] = {}
    for name, per_task in results.items():
        total = _sum([u for t in per_task for u in t])
        later = _sum([u for t in per_task for u in t[1:]])
        share = later.cache_read_input_tokens / later.prompt_tokens
        costs[name] = total.cost_usd or 0.0
        print(f"{name:36} {total.prompt_tokens:>10,} {later.cache_read_input_tokens:>14,} {share:>8.1%} "
              f"{total.output_tokens:>10,} {costs[name]:>9.5f} {costs[name] / base_cost:>10.1%}")
    ratio = costs["ours, batch (cached)"] / costs["ours, sync (cached)"]
    print(f"batch vs sync, same work: {ratio:.1%} of the cost (target <= 50%)")


if __name__ == "__main__":
    main()
