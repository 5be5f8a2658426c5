"""Program repair, offline: how many of the corpus's seeded bugs the swarm fixes within its budget.

Each case of `bench/repair_corpus/` (a small program with one seeded bug and tests that catch
it) becomes a code task for a swarm on a real nats-server: the dreamer with the offline repair
search, and the sandbox critic running the case's tests in bubblewrap. Per case: accepted or
not, rounds, candidates judged, seconds; each accepted patch is re-run outside the swarm (plain
pytest on a fresh copy) to confirm it passes. Then the sandbox's overhead: the same test command
on the same cases as a plain subprocess and in the sandbox, interleaved, in the same run.

    python bench/repair.py [--rounds 10] [--candidates 4] [--parallel 4] [--overhead-runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from reverie.protocol import Budget, Result, ResultStatus
from reverie.runtime import EmbeddedNats, connect, parse_config, serve_agent
from reverie.runtime.cli.codepack import pack_folder
from reverie.runtime.sandbox import Sandbox, SandboxLimits

CORPUS = Path(__file__).resolve().parent / "repair_corpus"
TEST = "python -m pytest -q"

AGENTS = """
[[agents]]
name = "dreamer"
kind = "dreamer"
concurrency = 16
[agents.options]
verdict_timeout = 60.0
[agents.options.reasoner_options]
seed = 7

[[agents]]
name = "sandbox"
kind = "sandbox-critic"
concurrency = 2
"""


def cases() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if (p / "case.json").is_file())


def code_task(case: Path) -> dict[str, Any]:
    """The case as a code task; `case.json` (which holds the fix) is not sent."""
    task = pack_folder(case, test=TEST, timeout=30)
    task["files"].pop("case.json")
    return task


def verify_outside(case: Path, files: dict[str, str]) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / case.name
        shutil.copytree(case, copy)
        for path, content in files.items():
            (copy / path).write_text(content)
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=copy,
                             capture_output=True, timeout=120)
        return run.returncode == 0


async def repair_all(url: str, data: Path, budget: Budget, parallel: int) -> list[tuple[Path, Result, float]]:
    config = parse_config(f'swarm = "repair"\n[nats]\nurl = "{url}"\n{AGENTS}', data_dir=data)
    gate = asyncio.Semaphore(parallel)
    async with serve_agent(config, "dreamer", servers=[url]), serve_agent(config, "sandbox", servers=[url]), \
            connect(config, servers=[url]) as swarm:
        async def one(case: Path) -> tuple[Path, Result, float]:
            async with gate:
                began = time.perf_counter()
                result = await swarm.submit(code_task(case), kind="code", budget=budget, timeout=900)
                return case, result, time.perf_counter() - began

        return list(await asyncio.gather(*(one(c) for c in cases())))


async def overhead(runs: int) -> tuple[list[float], list[float]]:
    """Seconds per test run, plain subprocess and sandboxed, interleaved case by case."""
    sandbox = Sandbox(limits=SandboxLimits(timeout=60))
    await sandbox.check()
    plain: list[float] = []
    boxed: list[float] = []
    for _ in range(runs):
        for case in cases():
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / case.name
                await asyncio.to_thread(shutil.copytree, case, copy)
                began = time.perf_counter()
                proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "pytest", "-q", "-p",
                                                            "no:cacheprovider", cwd=copy,
                                                            stdout=asyncio.subprocess.DEVNULL,
                                                            stderr=asyncio.subprocess.DEVNULL)
                await proc.wait()
                plain.append(time.perf_counter() - began)
                began = time.perf_counter()
                await sandbox.run(copy, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
                boxed.append(time.perf_counter() - began)
    return plain, boxed


async def main(args: argparse.Namespace) -> None:
    budget = Budget(max_rounds=args.rounds, candidates_per_round=args.candidates, max_seconds=600)
    print(f"# program repair, offline reasoner + sandbox critic; {machine()}")
    print(f"# {len(cases())} cases, budget {args.rounds} rounds x {args.candidates} candidates, "
          f"{args.parallel} tasks at once")
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            began = time.perf_counter()
            done = await repair_all(server.url, Path(tmp) / "data", budget, args.parallel)
            wall = time.perf_counter() - began
    print("| case | family | result | rounds | candidates | seconds | re-run outside |")
    print("|---|---|---|---:|---:|---:|---|")
    by_family: dict[str, list[bool]] = {}
    repaired = []
    for case, result, secs in done:
        family = json.loads((case / "case.json").read_text())["bug"]
        ok = result.status is ResultStatus.ACCEPTED
        confirmed = ok and verify_outside(case, result.answer["files"])
        judged = sum(len(r.candidates) for r in result.trace)
        by_family.setdefault(family, []).append(ok and confirmed)
        if ok:
            repaired.append((result.rounds, judged, secs, confirmed))
        print(f"| {case.name} | {family} | {result.status.value} | {result.rounds} | {judged} | {secs:.1f} | "
              f"{'passes' if confirmed else ('FAILS' if ok else '-')} |")
    n = len(done)
    print(f"\nrepaired {len(repaired)}/{n} ({100 * len(repaired) / n:.0f}%) in {wall:.0f} s wall; "
          f"re-run outside the swarm: {sum(1 for r in repaired if r[3])}/{len(repaired)} pass")
    if repaired:
        print(f"per repair: rounds mean {statistics.fmean(r[0] for r in repaired):.1f}, median "
              f"{statistics.median(r[0] for r in repaired):g}; candidates judged mean "
              f"{statistics.fmean(r[1] for r in repaired):.1f}; seconds mean "
              f"{statistics.fmean(r[2] for r in repaired):.1f}, median {statistics.median(r[2] for r in repaired):.1f}")
    print("by family: " + ", ".join(f"{f} {sum(v)}/{len(v)}" for f, v in sorted(by_family.items())))
    plain, boxed = await overhead(args.overhead_runs)
    p, b = statistics.median(plain), statistics.median(boxed)
    print(f"\nsandbox overhead ({len(plain)} test runs per side, interleaved): plain subprocess median "
          f"{p * 1000:.0f} ms, sandboxed median {b * 1000:.0f} ms, ratio {b / p:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--overhead-runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
