"""`reverie up|submit|status|task`: run a swarm, publish tasks onto it, look at it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from reverie.protocol import ResultStatus, Task, new_id

from ..client import connect, served_kinds
from ..config import load_config
from ..logs import setup_logging
from ..swarm.supervisor import Supervisor
from .render import format_result, format_status

__all__ = ["CONFIG", "DATA_DIR", "pause", "resume", "show", "status", "submit", "task", "up"]

CONFIG = click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Override the config's data_dir.")


@click.command()
@CONFIG
@DATA_DIR
@click.option("--tls", is_flag=True, help="Embedded NATS speaks TLS only, with a certificate from the "
                                          "swarm's own CA (as `nats.tls = true`).")
def up(config: Path, data_dir: Path | None, tls: bool) -> None:
    """Start the swarm CONFIG describes and run it until Ctrl-C or SIGTERM."""
    setup_logging()
    cfg = load_config(config, data_dir=data_dir)
    if tls:
        if not cfg.nats.embedded:
            raise click.UsageError("--tls applies to the embedded server (nats.url = \"embedded\"); for an "
                                   "existing deployment set nats.ca_file and use tls:// URLs")
        cfg = msgspec.structs.replace(cfg, nats=msgspec.structs.replace(cfg.nats, tls=True))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        starting = True

        def on_signal() -> None:  # honoured at every stage: while starting, it cancels the start
            stop.set()
            if starting and main is not None:
                main.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        try:
            async with Supervisor(cfg) as sup:
                starting = False
                await stop.wait()
                sup.say("stopping: draining agents")
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
            print("reverie: stopped while starting", flush=True)
            return
        print("reverie: swarm stopped", flush=True)

    asyncio.run(run())


def _task_input(task: str, *, text: bool = False) -> Any:
    """@file.json, inline JSON, or plain text. Text that opens like JSON (`{`, `[`) must be
    valid JSON: a typo is said here, not as a decode error in the agent later."""
    if text:
        return task
    if task.startswith("@"):
        path = Path(task[1:])
        try:
            return json.loads(path.read_text())
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="TASK") from None
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"{path} is not JSON: {exc}", param_hint="TASK") from None
    try:
        return json.loads(task)
    except json.JSONDecodeError as exc:
        if task.lstrip().startswith(("{", "[")):
            raise click.BadParameter(f"looks like JSON but is not valid JSON: {exc} (pass --text to send it "
                                     f"as plain text)", param_hint="TASK") from None
        return task


@click.command()
@CONFIG
@click.argument("task")
@click.option("--kind", default="plan", show_default=True, help="Task kind: the subject is rv.<swarm>.task.<kind>.")
@click.option("--wait/--no-wait", default=False, help="Wait for the result and print it.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait with --wait.")
@click.option("--id", "task_id", help="Task id (default: random). Publishing an id twice queues it once.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--text", is_flag=True, help="Send TASK as plain text, even if it looks like JSON.")
@click.option("--queue-anyway", is_flag=True, help="Queue a task of a kind no agent of CONFIG serves "
                                                   "(for an agent that runs elsewhere).")
@DATA_DIR
def submit(config: Path, task: str, kind: str, wait: bool, timeout: float, task_id: str | None,
           as_json: bool, text: bool, queue_anyway: bool, data_dir: Path | None) -> None:
    """Publish TASK (JSON text, plain text, or @file.json) onto the swarm."""
    cfg = load_config(config, data_dir=data_dir, check_agents=False)
    payload = _task_input(task, text=text)
    kinds = None if queue_anyway else served_kinds(cfg)
    if kinds is not None and kind not in kinds and "*" not in kinds and ">" not in kinds:
        raise click.BadParameter(f"no agent of {config} serves tasks of kind {kind!r} (it serves: "
                                 f"{', '.join(sorted(kinds)) or 'none'}); it would wait in the queue "
                                 f"forever. Pass --queue-anyway if an agent elsewhere serves it.",
                                 param_hint="--kind")

    async def run() -> int:
        async with connect(cfg) as swarm:
            if not wait:
                tid = await swarm.publish(Task(id=task_id or new_id(), kind=kind, input=payload))
                click.echo(json.dumps({"task_id": tid}) if as_json else tid)
                return 0
            result = await swarm.submit(payload, kind=kind, task_id=task_id, timeout=timeout)
        click.echo(msgspec.json.encode(result).decode() if as_json else format_result(result))
        return 0 if result.status is ResultStatus.ACCEPTED else 1

    sys.exit(asyncio.run(run()))


@click.command()
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--timeout", default=0.5, show_default=True, help="Seconds to wait for agents to answer.")
@DATA_DIR
def status(config: Path, as_json: bool, timeout: float, data_dir: Path | None) -> None:
    """List live agents and task counts."""
    cfg = load_config(config, data_dir=data_dir, check_agents=False)

    async def run() -> None:
        async with connect(cfg) as swarm:
            st = await swarm.status(timeout=timeout)
        click.echo(msgspec.json.encode(st).decode() if as_json else format_status(st))

    asyncio.run(run())


@click.group(context_settings={"allow_interspersed_args": True, "ignore_unknown_options": True})
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@DATA_DIR
@click.pass_context
def task(ctx: click.Context, config: Path, as_json: bool, data_dir: Path | None) -> None:
    """Pause, resume or inspect a task by id: reverie task CONFIG pause|resume|show TASK_ID."""
    ctx.obj = (config, as_json, data_dir)


def _task_action(obj: tuple[Any, ...], task_id: str, action: str) -> None:
    config, as_json, data_dir = obj
    cfg = load_config(config, data_dir=data_dir, check_agents=False)

    async def run() -> tuple[bool, dict[str, Any]]:
        async with connect(cfg) as swarm:
            requeued = False
            if action == "pause":
                await swarm.pause(task_id)
            elif action == "resume":
                requeued = await swarm.resume(task_id)
            return requeued, msgspec.to_builtins(await swarm.task_info(task_id))

    requeued, info = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(info))
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


@task.command()
@click.argument("task_id")
@click.pass_obj
def show(obj: tuple[Any, ...], task_id: str) -> None:
    """Show what the swarm knows of TASK_ID."""
    _task_action(obj, task_id, "show")


