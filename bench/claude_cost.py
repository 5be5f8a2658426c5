"""What a 5-round task costs on Claude: prompt caching and the Message Batches API.

Drives the real `ClaudeReasoner` and the LLM critic's requests (real `AsyncAnthropic` client)
against the fake Messages API of `tests/fakes/messages_api.py`, which enforces each model's rules
and reports usage by Anthropic's caching rules on its token approximation (ceil(chars / 4) per
block; prefixes under the model's minimum, 512 tokens for Sonnet 5.5, are not cached). Each
round proposes 3 candidates; an LLM critic judges each one (its spend is in the totals) and
rule critics reject them with reasons, which the next round's prompt carries, as in a real
dream; 20 lessons are recalled.

Runs, same work each: baseline = the same prompts with every `cache_control` removed (what a
framework without caching sends); ours sync = cached; ours batch = the reasoner's requests
cached, through batches (the critic answers while the dreamer waits: always sync). Costs by
the price table (Sonnet 5.5: $2 / $10 per MTok; cache write $2.50, read $0.10; batches half
price).

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

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reverie.agents.claude import critic as claude_critic
from reverie.agents.claude import reasoner as claude_reasoner
from reverie.agents.claude.client import Claude, ClaudeOptions
from reverie.agents.claude.reasoner import ClaudeReasoner
from reverie.protocol import (
    Candidate,
    Decision,
    JudgedCandidate,
    Reason,
    RoundTrace,
    Task,
    Usage,
    Verdict,
)
from tests.fakes.messages_api import FakeAnthropic, Reply

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


CONSTITUTION = [f"Rule {i}: a migration plan keeps a verified backup before any step that changes data, and "
                f"verifies checksums before traffic moves (variant {i} of the house rules)." for i in range(1, 13)]
VERDICT = Reply.tool("verdict", {"decision": "reject", "reasons": [{"rule": "2", "text": "checksums after traffic"}]})


async def _task(reasoner: ClaudeReasoner, judge: Claude, fake: FakeAnthropic, task: Task, rounds: int,
                k: int) -> list[Usage]:
    history: list[RoundTrace] = []
    used: list[Usage] = []
    for rnd in range(1, rounds + 1):
        fake.responder = lambda body, rnd=rnd: VERDICT if body["tools"][0]["name"] == "verdict" else _reply(rnd, k)
        out = await reasoner.propose(task, rnd, k, history, _lessons())
        assert out.usage is not None and not any(p.invalid for p in out.proposals)
        used.append(out.usage)
        trace = _judge(task, rnd, out.proposals)
        for j in trace.candidates:  # the LLM critic's call on each candidate, as the llm-critic agent makes it
            cand = msgspec.structs.replace(j.candidate, task=task)
            request = claude_critic.build_request(judge.options, cand, judge.tool_choice(claude_critic.TOOL_NAME))
            _, spent = await judge.create(judge.params(refining=False, **request))
            used.append(spent)
        history.append(trace)
    return used


async def run(mode: str, *, cache: bool, rounds: int, tasks: int, k: int = 3) -> list[list[Usage]]:
    os.environ["REVERIE_BENCH_KEY"] = "bench"
    spec = json.loads((ROOT / "deploy" / "tasks" / "db-migration.json").read_text())
    original, original_critic = claude_reasoner._cached, claude_critic.build_request
    if not cache:
        claude_reasoner._cached = lambda block: block  # type: ignore[assignment]
        claude_critic.build_request = lambda *a: _uncached(original_critic(*a))  # type: ignore[assignment]
    try:
        with FakeAnthropic() as fake:
            options = ClaudeOptions(model="claude-sonnet-5-5", base_url=fake.url, api_key_env="REVERIE_BENCH_KEY",
                                    mode=mode, batch_poll=0.01)  # type: ignore[arg-type]
            judging = ClaudeOptions(model="claude-sonnet-5-5", base_url=fake.url, api_key_env="REVERIE_BENCH_KEY",
                                    constitution=CONSTITUTION)
            reasoner = ClaudeReasoner(options)
            try:
                async with Claude(judging) as judge:
                    return [await _task(reasoner, judge, fake, Task(id=f"t{i}", kind="plan", input=spec), rounds, k)
                            for i in range(tasks)]
            finally:
                await reasoner.close()
    finally:
        claude_reasoner._cached = original
        claude_critic.build_request = original_critic


def _uncached(value: Any) -> Any:
    """A request with every `cache_control` removed."""
    if isinstance(value, dict):
        return {k: _uncached(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_uncached(v) for v in value]
    return value


def _sum(usages: list[Usage]) -> Usage:
    return sum(usages[1:], usages[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=3)
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    print(f"# {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}; "
          f"{args.tasks} tasks x {args.rounds} rounds x 3 candidates, claude-sonnet-5-5 prices")
    results = {
        "baseline (no cache_control), sync": asyncio.run(run("sync", cache=False, rounds=args.rounds,
                                                             tasks=args.tasks)),
        "ours, sync (cached)": asyncio.run(run("sync", cache=True, rounds=args.rounds, tasks=args.tasks)),
        "ours, batch (cached)": asyncio.run(run("batch", cache=True, rounds=args.rounds, tasks=args.tasks)),
    }
    print(f"{'run':36} {'prompt tok':>10} {'cache read r2+':>14} {'share r2+':>9} {'output tok':>10} "
          f"{'cost USD':>9} {'vs baseline':>11}")
    base_cost = _sum([u for t in results["baseline (no cache_control), sync"] for u in t]).cost_usd or 0.0
    costs: dict[str, float] = {}
    for name, per_task in results.items():
        total = _sum([u for t in per_task for u in t])
        later = _sum([u for t in per_task for u in t[1 + 3:]])  # rounds 2+: after round 1's proposal and 3 verdicts
        share = later.cache_read_input_tokens / later.prompt_tokens
        costs[name] = total.cost_usd or 0.0
        print(f"{name:36} {total.prompt_tokens:>10,} {later.cache_read_input_tokens:>14,} {share:>8.1%} "
              f"{total.output_tokens:>10,} {costs[name]:>9.5f} {costs[name] / base_cost:>10.1%}")
    ratio = costs["ours, batch (cached)"] / costs["ours, sync (cached)"]
    print(f"batch vs sync, same work (critic always sync): {ratio:.1%} of the cost")
    critic = _sum([u for t in results["ours, sync (cached)"] for i, u in enumerate(t) if i % 4])
    print(f"LLM critic's share of the cached sync cost: {(critic.cost_usd or 0) / costs['ours, sync (cached)']:.1%} "
          f"({critic.requests} requests)")


if __name__ == "__main__":
    main()
