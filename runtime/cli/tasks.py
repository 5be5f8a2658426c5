"""`reverie task CONFIG list|pause|resume|cancel|show`: the swarm's tasks, one by one."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from reverie.protocol import Result, TaskState

from ..client import connect
from ..config import load_config
from ..errors import TaskTimeout
from .groups import ConfigGroup
from .render import format_result
from .swarm import CONFIG, DATA_DIR

__all__ = ["cancel", "list_tasks", "pause", "resume", "show", "task"]


@click.group(cls=ConfigGroup)
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@DATA_DIR
@click.pass_context
def task(ctx: click.Context, config: Path, as_json: bool, data_dir: Path | None) -> None:
    """List tasks, or pause, resume, cancel or inspect one: reverie task CONFIG list|pause|resume|cancel|show."""
    ctx.obj = (config, as_json, data_dir)


def _task_action(obj: tuple[Any, ...], task_id: str, action: str) -> None:
    config, as_json, data_dir = obj
    cfg = load_config(config, data_dir=data_dir, check_agents=False)

    async def run() -> tuple[bool, dict[str, Any], bool]:
        async with connect(cfg) as swarm:
            requeued = False
            if action == "pause" and await swarm.bus.get_result(task_id) is not None:
                return False, msgspec.to_builtins(await swarm.task_info(task_id)), False
            if action == "pause":
                await swarm.pause(task_id)
            elif action == "resume":
                requeued = await swarm.resume(task_id)
            return requeued, msgspec.to_builtins(await swarm.task_info(task_id)), True

    requeued, info, acted = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(info))
    elif not acted:
        click.echo(f"{task_id}: finished ({info['state']} after {info['rounds']} round(s)); there is nothing "
                   f"to pause", err=True)
    unknown = action == "show" and info["state"] == TaskState.UNKNOWN.value
    if unknown and not as_json:
        click.echo(f"{task_id}: no dreamer knows this task and no result is stored (is the id right?)", err=True)
    if not acted or unknown:
        sys.exit(1)
    if as_json:
        return
    if action == "resume":
        click.echo(f"{task_id}: " + ("queued again; it resumes at its next round" if requeued
                                     else "pause cleared (the task was not parked)"))
    click.echo(f"{task_id}: {info['state']} after {info['rounds']} round(s), {info['candidates']} "
               f"candidate(s), {info['rejected']} rejected, {info['spent']:.2f}s dreaming, "
               f"{info['resumes']} resume(s)" + (f" (dreamer {info['agent']})" if info["agent"] else ""))


@task.command()
@click.argument("task_id")
@click.pass_obj
def pause(obj: tuple[Any, ...], task_id: str) -> None:
    """Pause TASK_ID after its current round (it checkpoints; nothing is lost)."""
    _task_action(obj, task_id, "pause")


@task.command()
@click.argument("task_id")
@click.pass_obj
def resume(obj: tuple[Any, ...], task_id: str) -> None:
    """Resume a paused TASK_ID at its next round."""
    _task_action(obj, task_id, "resume")


@task.command("list")
@click.option("--state", type=click.Choice([s.value for s in TaskState if s is not TaskState.UNKNOWN]),
              help="Only tasks in this state.")
@click.pass_obj
def list_tasks(obj: tuple[Any, ...], state: str | None) -> None:
    """List the swarm's tasks: queued, running, paused, and the newest 200 done."""
    config, as_json, data_dir = obj
    cfg = load_config(config, data_dir=data_dir, check_agents=False)

    async def run() -> list[Any]:
        async with connect(cfg) as swarm:
            return await swarm.tasks(TaskState(state) if state else None)

    found = asyncio.run(run())
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
        return
    for info in found:
        click.echo(f"{info.task_id:<24} {info.state.value:<8} {info.rounds:>3} round(s) {info.candidates:>4} "
                   f"candidate(s) {info.spent:8.2f}s" + (f"  {info.agent}" if info.agent else ""))
    if not found:
        click.echo("no tasks" + (f" {state}" if state else ""), err=True)


@task.command()
@click.argument("task_id")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the cancelled result.")
@click.pass_obj
def cancel(obj: tuple[Any, ...], task_id: str, timeout: float) -> None:
    """Cancel TASK_ID: it ends with a `cancelled` result (after its current round if it is dreaming)."""
    config, as_json, data_dir = obj
    cfg = load_config(config, data_dir=data_dir, check_agents=False)

    async def run() -> tuple[Result | None, bool]:
        async with connect(cfg) as swarm:
            stored = await swarm.bus.get_result(task_id)
            if stored is not None:
                return stored, False
            await swarm.cancel(task_id)
            try:
                return await swarm.result(task_id, timeout=timeout), True
            except TaskTimeout:
                return None, True

    found, acted = asyncio.run(run())
    if found is None:
        click.echo(f"{task_id}: cancel requested; it ends cancelled when a dreamer takes it")
        return
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
    elif not acted:
        click.echo(f"{task_id}: finished ({found.status.value}); there is nothing to cancel", err=True)
    else:
        click.echo(format_result(found))
    if not acted:
        sys.exit(1)


@task.command()
@click.argument("task_id")
@click.pass_obj
def show(obj: tuple[Any, ...], task_id: str) -> None:
    """Show what the swarm knows of TASK_ID."""
    _task_action(obj, task_id, "show")
