"""`reverie demo`: the local swarm of deploy/local.toml solving the sample tasks offline: change
plans, and a small project whose failing test the swarm repairs in a sandbox."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

import click

from reverie.protocol import Budget, Result, ResultStatus, Task, new_id

from ..client import connect
from ..config import load_config
from ..logs import setup_logging
from ..swarm.supervisor import Supervisor
from .render import format_result

__all__ = ["demo", "packaged_config", "run_demo", "sample_tasks"]


def sample_tasks(kind: str = "plan") -> dict[str, object]:
    """The sample task inputs that ship in `reverie.deploy/tasks` (plan specs; with `kind="code"`,
    the code tasks of `tasks/code`), by name."""
    folder = resources.files("reverie.deploy") / "tasks"
    if kind != "plan":
        folder = folder / kind
    return {p.name.removesuffix(".json"): json.loads(p.read_text())
            for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".json")}


def packaged_config() -> Path:
    return Path(str(resources.files("reverie.deploy") / "local.toml"))


async def run_demo(*, keep: bool = False, echo: bool = True) -> dict[str, Result]:
    data = Path(tempfile.mkdtemp(prefix="reverie-demo-"))
    config = load_config(packaged_config(), data_dir=data)

    def say(line: str) -> None:
        if echo:
            print(line, flush=True)

    say(f"reverie demo: starting swarm {config.swarm!r} from {config.source} (data in {data})")
    try:
        with await asyncio.to_thread((data / "swarm.log").open, "w") as log:
            async with Supervisor(config, out=log) as sup:
                say(f"reverie demo: {len(sup.replicas)} agent processes ready on {sup.url}")
                async with connect(config) as swarm:
                    plans, code = sample_tasks(), sample_tasks("code")
                    budget = Budget(max_rounds=5, max_seconds=60, candidates_per_round=3)
                    repair = Budget(max_rounds=8, max_seconds=180, candidates_per_round=4)
                    names = [*plans, *code]
                    results = await swarm.submit_many(
                        [Task(id=f"{name}-{new_id()[:6]}", kind="plan", input=spec, budget=budget)
                         for name, spec in plans.items()]
                        + [Task(id=f"{name}-{new_id()[:6]}", kind="code", input=inp, budget=repair)
                           for name, inp in code.items()], timeout=240)
                for name, result in zip(names, results, strict=True):
                    say("")
                    say(format_result(result, title=name))
        say("")
        say("reverie demo: done, swarm stopped")
        return dict(zip(names, results, strict=True))
    finally:
        if keep:
            say(f"reverie demo: data kept in {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo's data directory.")
def demo(keep: bool) -> None:
    """Run the local swarm offline on the sample tasks, print the results, stop."""
    setup_logging()
    results = asyncio.run(run_demo(keep=keep))
    if not all(r.status is ResultStatus.ACCEPTED for r in results.values()):
        sys.exit(1)
