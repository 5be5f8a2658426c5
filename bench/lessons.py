"""Do lessons cut rounds? Families of similar tasks, solved with recall on and with recall off.

Two swarms on one real nats-server, identical but for the dreamer's `recall_limit` (20 and 0),
each with its own fresh memory. Each solves the same families of similar tasks, one task after
another, so the recall-on dreamer can use what earlier tasks of the family taught it:

- plans: variants of each sample plan spec (`deploy/tasks/*.json`), durations scaled by a seeded
  factor: the same operations and constraints, other costs;
- code: a module of small functions and its tests, each variant with one bug of the family's
  kind seeded into a different function (off-by-one bounds, comparison, string methods),
  repaired by the offline search with the sandbox critic running the tests.

Printed per domain: mean rounds and candidates judged per task, over every task and over the
tasks after each family's first (the first has nothing to recall), for both sides.

    python bench/lessons.py [--variants 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from reverie.protocol import Budget, Result
from reverie.runtime import EmbeddedNats, connect, parse_config, serve_agent

TASKS = Path(__file__).resolve().parent.parent / "deploy" / "tasks"

AGENTS = """
[[agents]]
name = "dreamer"
kind = "dreamer"
concurrency = 8
[agents.options]
recall_limit = {recall}
verdict_timeout = 30.0
[agents.options.reasoner_options]
seed = 7

[[agents]]
name = "rules"
kind = "rule-critic"
[agents.options]
harmful = ["force_push", "drop_database", "rm_rf"]
forbidden = ["skip_tests"]
max_steps = 12

[[agents]]
name = "planner"
kind = "plan-critic"

[[agents]]
name = "budget"
kind = "budget-critic"

[[agents]]
name = "sandbox"
kind = "sandbox-critic"
"""

# Code families: (file, source with one {bug_i} slot per function, tests, per function: (right, wrong))
WINDOWS = ('''def window_sums(xs, k):
    return [sum(xs[i:i + k]) for i in range({b0})]


def window_maxes(xs, k):
    return [max(xs[i:i + k]) for i in range({b1})]


def pairs(xs):
    return [(xs[i], xs[i + 1]) for i in range({b2})]


def tail(xs, n):
    return xs[{b3}:]
''', '''from windows import pairs, tail, window_maxes, window_sums


def test_window_sums():
    assert window_sums([1, 2, 3, 4], 2) == [3, 5, 7]


def test_window_maxes():
    assert window_maxes([1, 3, 2, 5], 3) == [3, 5]


def test_pairs():
    assert pairs([1, 2, 3]) == [(1, 2), (2, 3)]


def test_tail():
    assert tail([1, 2, 3, 4], 2) == [3, 4]
''', [("len(xs) - k + 1", "len(xs) - k"), ("len(xs) - k + 1", "len(xs) - k"), ("len(xs) - 1", "len(xs) - 2"),
      ("len(xs) - n", "len(xs) - n + 1")])
CHECKS = ('''def is_adult(age):
    return age {b0} 18


def in_range(x, lo, hi):
    return lo <= x {b1} hi


def is_empty(xs):
    return len(xs) {b2} 0


def positive(x):
    return x {b3} 0
''', '''from checks import in_range, is_adult, is_empty, positive


def test_is_adult():
    assert is_adult(18) and is_adult(30) and not is_adult(17)


def test_in_range():
    assert in_range(5, 1, 5) and not in_range(6, 1, 5)


def test_is_empty():
    assert is_empty([]) and not is_empty([1])


def test_positive():
    assert positive(1) and not positive(0)
''', [(">=", ">"), ("<=", "<"), ("==", "!="), (">", ">=")])
TEXTS = ('''def has_prefix(s, p):
    return s.{b0}(p)


def shout(s):
    return s.{b1}() + "!"


def strip_left(s):
    return s.{b2}()


def last_dot(s):
    return s.{b3}(".")
''', '''from texts import has_prefix, last_dot, shout, strip_left


def test_has_prefix():
    assert has_prefix("reverie", "rev") and not has_prefix("reverie", "rie")


def test_shout():
    assert shout("hi") == "HI!"


def test_strip_left():
    assert strip_left("  a ") == "a "


def test_last_dot():
    assert last_dot("a.b.c") == 3
''', [("startswith", "endswith"), ("upper", "lower"), ("lstrip", "rstrip"), ("rfind", "find")])
FAMILIES = {"windows.py": WINDOWS, "checks.py": CHECKS, "texts.py": TEXTS}


def code_variants(n: int) -> dict[str, list[dict[str, Any]]]:
    """Per family, `n` tasks: each with the bug in another function (cycling)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (source, tests, slots) in FAMILIES.items():
        tasks = []
        for v in range(n):
            bugged = v % len(slots)
            fill = {f"b{i}": (wrong if i == bugged else right) for i, (right, wrong) in enumerate(slots)}
            tasks.append({"files": {name: source.format(**fill), f"test_{name}": tests},
                          "test": "python -m pytest -q", "timeout": 30})
        out[name] = tasks
    return out


def plan_variants(n: int) -> dict[str, list[Any]]:
    rng = random.Random(11)
    out: dict[str, list[Any]] = {}
    for path in sorted(TASKS.glob("*.json")):
        spec = json.loads(path.read_text())
        tasks = []
        for _ in range(n):
            variant = json.loads(json.dumps(spec))
            for op in variant["operations"]:
                op["duration"] = round(op["duration"] * rng.uniform(0.8, 1.2), 2)
            tasks.append(variant)
        out[path.stem] = tasks
    return out


async def solve(url: str, data: Path, swarm: str, recall: int, families: dict[str, list[Any]], kind: str,
                budget: Budget) -> list[list[Result]]:
    config = parse_config(f'swarm = "{swarm}"\n[nats]\nurl = "{url}"\n{AGENTS.format(recall=recall)}', data_dir=data)
    names = ["dreamer", "rules", "planner", "budget", "sandbox"]
    async with serve_agent(config, names[0], servers=[url]), serve_agent(config, names[1], servers=[url]), \
            serve_agent(config, names[2], servers=[url]), serve_agent(config, names[3], servers=[url]), \
            serve_agent(config, names[4], servers=[url]), connect(config, servers=[url]) as client:
        out = []
        for tasks in families.values():
            out.append([await client.submit(t, kind=kind, budget=budget, timeout=600) for t in tasks])
        return out


def report(label: str, on: list[list[Result]], off: list[list[Result]]) -> None:
    def stats(results: list[list[Result]], skip_first: bool) -> tuple[float, float, int, int]:
        picked = [r for fam in results for r in (fam[1:] if skip_first else fam)]
        rounds = statistics.fmean(r.rounds for r in picked)
        judged = statistics.fmean(sum(len(t.candidates) for t in r.trace) for r in picked)
        accepted = sum(1 for r in picked if r.status.value == "accepted")
        return rounds, judged, accepted, len(picked)

    print(f"| {label} | tasks | recall on: rounds | candidates | accepted | recall off: rounds | candidates "
          "| accepted |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for skip, what in ((False, "every task"), (True, "after each family's first")):
        a, b = stats(on, skip), stats(off, skip)
        print(f"| {what} | {a[3]} | {a[0]:.2f} | {a[1]:.2f} | {a[2]} | {b[0]:.2f} | {b[1]:.2f} | {b[2]} |")


async def main(variants: int) -> None:
    print(f"# lessons: recall on (recall_limit 20) vs off (0), {variants} variants per family; {machine()}")
    plans, code = plan_variants(variants), code_variants(variants)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        async with EmbeddedNats(base / "nats") as server:
            plan_budget = Budget(max_rounds=6, max_seconds=60, candidates_per_round=3)
            code_budget = Budget(max_rounds=10, max_seconds=300, candidates_per_round=4)
            on_p = await solve(server.url, base / "on-p", "on-p", 20, plans, "plan", plan_budget)
            off_p = await solve(server.url, base / "off-p", "off-p", 0, plans, "plan", plan_budget)
            report(f"plans ({len(plans)} families)", on_p, off_p)
            on_c = await solve(server.url, base / "on-c", "on-c", 20, code, "code", code_budget)
            off_c = await solve(server.url, base / "off-c", "off-c", 0, code, "code", code_budget)
            report(f"code ({len(code)} families)", on_c, off_c)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", type=int, default=5)
    asyncio.run(main(parser.parse_args().variants))
