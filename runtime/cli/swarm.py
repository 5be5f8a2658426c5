"""`reverie up|submit|status|task`: run a swarm, publish tasks onto it, look at it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from reverie.protocol import Budget, Result, ResultStatus, Task, new_id

from ..client import connect, served_kinds
from ..config import load_config
from ..errors import TaskTimeout
from ..logs import LOG_FORMAT_ENV, LOG_LEVEL_ENV, LogFormat, json_line, setup_logging
from ..process import stop_pid
from ..sandbox import SandboxUnavailable
from ..swarm.placement import Placement
from ..swarm.state import read_state
from ..swarm.supervisor import Supervisor
from ..tracing import tracing_for
from .codepack import CodePackError, apply_answer, pack_folder, verify_answer
from .render import format_result, format_round, format_status

DEFAULT_TEST = "python -m pytest -q"
CODE_BUDGET = Budget(max_rounds=10, candidates_per_round=4, max_seconds=600)
"""A code task's budget unless --rounds/--candidates/--seconds say otherwise: test runs take seconds."""

__all__ = ["CONFIG", "DATA_DIR", "down", "result", "status", "submit", "up"]

CONFIG = click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Override the config's data_dir.")


@click.command()
@CONFIG
@DATA_DIR
@click.option("--tls", is_flag=True, help="Embedded NATS speaks TLS only, with a certificate from the "
                                          "swarm's own CA (as `nats.tls = true`).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Every agent's log lines: timestamped text, or one JSON object per line.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              default="INFO", show_default=True, help="The agents' log level.")
@click.option("--json", "as_json", is_flag=True, help="The supervisor's own lines, the ready line included, as "
                                                      "JSON objects (implies --log-format json).")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve Prometheus metrics of the whole swarm at http://127.0.0.1:PORT/metrics (0: a free port).")
@click.option("--only", metavar="NAME[,NAME]", help="Run only these agents on this host (NAME.I: only replica I "
                                                    "of NAME): a swarm spread over hosts runs its share on each.")
@click.option("--host-name", metavar="NAME", help="This host's name (default: $REVERIE_HOST, else the hostname): "
                                                  "[streams] creator names the host that creates the streams.")
@click.option("--nats", "nats_urls", metavar="URL[,URL]", help="The NATS servers of this host's agents, tried in "
                                                               "order (its own node first), instead of the config's.")
def up(config: Path, data_dir: Path | None, tls: bool, log_format: LogFormat, log_level: str, as_json: bool,
       metrics_port: int | None, only: str | None, host_name: str | None, nats_urls: str | None) -> None:
    """Start the swarm CONFIG describes (or, with --only, this host's share of it) and run it
    until Ctrl-C or SIGTERM."""
    log_format = "json" if as_json else log_format
    os.environ[LOG_FORMAT_ENV], os.environ[LOG_LEVEL_ENV] = log_format, log_level.upper()  # the agents inherit them
    setup_logging()
    cfg = load_config(config, data_dir=data_dir)
    if tls:
        if not cfg.nats.embedded:
            raise click.UsageError("--tls applies to the embedded server (nats.url = \"embedded\"); for an "
                                   "existing deployment set nats.ca_file and use tls:// URLs")
        cfg = msgspec.structs.replace(cfg, nats=msgspec.structs.replace(cfg.nats, tls=True))
    placement = Placement.parse(cfg, only, host=host_name)
    servers = [u.strip() for u in nats_urls.split(",") if u.strip()] if nats_urls else None
    if servers and cfg.nats.embedded:
        raise click.UsageError("--nats applies to an existing NATS deployment (nats.url names its servers)")

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
            async with Supervisor(cfg, log_format=log_format, metrics_port=metrics_port, placement=placement,
                                  servers=servers) as sup:
                starting = False
                await stop.wait()
                sup.say("stopping: draining agents")
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
            print(_line(log_format, "stopped while starting"), flush=True)
            return
        print(_line(log_format, "swarm stopped"), flush=True)

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
@click.argument("task", required=False)
@click.option("--kind", default=None, help="Task kind: the subject is rv.<swarm>.task.<kind>  [default: plan; "
                                          "code with --code]")
@click.option("--wait/--no-wait", default=False, help="Wait for the result and print it.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait with --wait.")
@click.option("--id", "task_id", help="Task id (default: random). Publishing an id twice queues it once.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="With --wait: print only the result, no line per round.")
@click.option("--text", is_flag=True, help="Send TASK as plain text, even if it looks like JSON.")
@click.option("--queue-anyway", is_flag=True, help="Queue a task of a kind no agent of CONFIG serves "
                                                   "(for an agent that runs elsewhere).")
@click.option("--code", "code_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Send the project in this folder as a code task (its .gitignore is respected).")
@click.option("--test", "test_cmd", default=DEFAULT_TEST, show_default=True,
              help="With --code: the command that runs the project's tests.")
@click.option("--edit", "edits", multiple=True, help="With --code: a file the swarm may change (repeat; "
                                                     "default: every file that is not a test).")
@click.option("--instruction", default="", help="With --code: what to do, in words.")
@click.option("--test-timeout", default=60.0, show_default=True, help="With --code: seconds one test run may take.")
@click.option("--apply", "apply_patch", is_flag=True, help="With --code --wait: write the accepted patch into the "
                                                           "folder, once the tests pass there with it (in a sandbox).")
@click.option("--rounds", type=click.IntRange(min=1), help="Budget: at most this many rounds (--code: 10).")
@click.option("--candidates", type=click.IntRange(min=1), help="Budget: candidates per round (--code: 4).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True),
              help="Budget: seconds of dreaming (--code: 600).")
@DATA_DIR
def submit(config: Path, task: str | None, kind: str | None, wait: bool, timeout: float, task_id: str | None,
           as_json: bool, quiet: bool, text: bool, queue_anyway: bool, code_dir: Path | None, test_cmd: str,
           edits: tuple[str, ...], instruction: str, test_timeout: float, apply_patch: bool, rounds: int | None,
           candidates: int | None, seconds: float | None, data_dir: Path | None) -> None:
    """Publish TASK (JSON text, plain text, or @file.json) onto the swarm, or with --code DIR
    the project in DIR as a code task."""
    cfg = load_config(config, data_dir=data_dir, check_agents=False)
    if code_dir is not None:
        if task is not None:
            raise click.BadParameter("give either TASK or --code DIR, not both", param_hint="--code")
        try:
            payload: Any = pack_folder(code_dir, test=test_cmd, edit=edits, instruction=instruction,
                                       timeout=test_timeout)
        except CodePackError as exc:
            raise click.BadParameter(str(exc), param_hint="--code") from None
        kind = kind or "code"
    elif task is None:
        raise click.BadParameter("give a TASK, or --code DIR", param_hint="TASK")
    else:
        payload = _task_input(task, text=text)
        kind = kind or "plan"
    if apply_patch and (code_dir is None or not wait):
        raise click.BadParameter("--apply goes with --code DIR and --wait", param_hint="--apply")
    default = CODE_BUDGET if code_dir is not None else Budget()
    budget = None if code_dir is None and rounds is None and candidates is None and seconds is None else Budget(
        max_rounds=rounds or default.max_rounds, candidates_per_round=candidates or default.candidates_per_round,
        max_seconds=seconds or default.max_seconds)
    kinds = None if queue_anyway else served_kinds(cfg)
    if kinds is not None and kind not in kinds and "*" not in kinds and ">" not in kinds:
        raise click.BadParameter(f"no agent of {config} serves tasks of kind {kind!r} (it serves: "
                                 f"{', '.join(sorted(kinds)) or 'none'}); it would wait in the queue "
                                 f"forever. Pass --queue-anyway if an agent elsewhere serves it.",
                                 param_hint="--kind")

    async def run() -> int:
        async with connect(cfg) as swarm:
            if not wait:
                tid = await swarm.publish(Task(id=task_id or new_id(), kind=kind, input=payload, budget=budget))
                click.echo(json.dumps({"task_id": tid}) if as_json else tid)
                return 0
            tid = task_id or new_id()
            watch = not (as_json or quiet)
            if watch:
                click.echo(f"{tid}: queued ({kind}); one line per round as the dreamer judges it")
            result = await swarm.submit(payload, kind=kind, task_id=tid, timeout=timeout, budget=budget,
                                        progress=(lambda event: click.echo(format_round(event))) if watch else None)
        click.echo(msgspec.json.encode(result).decode() if as_json else format_result(result))
        if result.status is not ResultStatus.ACCEPTED:
            return 1
        if apply_patch and code_dir is not None:
            return await _apply(code_dir, result.answer, test_cmd, test_timeout)
        return 0

    with tracing_for(cfg, service="reverie-cli"):  # the task's trace starts here when [tracing] says so
        code = asyncio.run(run())
    sys.exit(code)


def _line(log_format: str, text: str) -> str:
    return json_line("INFO", "reverie.supervisor", text) if log_format == "json" else f"reverie: {text}"


async def _apply(root: Path, answer: Any, test: str, seconds: float) -> int:
    """Write an accepted patch into `root` once the tests pass there with it; 1 if they do not."""
    try:
        outcome = await verify_answer(root, answer, test=test, seconds=seconds)
    except (CodePackError, SandboxUnavailable) as exc:
        click.echo(f"not applied: {exc}", err=True)
        return 1
    if not outcome.passed:
        why = "timed out" if outcome.timed_out else f"exit code {outcome.exit_code}"
        click.echo(f"not applied: the tests fail in {root} with the patch ({why}):\n{outcome.stdout[-2000:]}", err=True)
        return 1
    written = apply_answer(root, answer)
    click.echo(f"applied to {root}: {', '.join(written)} (the tests pass there with it)")
    return 0


@click.command()
@CONFIG
@DATA_DIR
@click.option("--grace", default=30.0, show_default=True,
              help="Seconds the swarm gets to drain before its supervisor is killed.")
def down(config: Path, data_dir: Path | None, grace: float) -> None:
    """Stop the swarm CONFIG describes, as Ctrl-C on its `reverie up` would: agents drain, in-flight
    tasks are checkpointed, the embedded server stops."""
    cfg = load_config(config, data_dir=data_dir, check_agents=False)
    state = read_state(cfg.data_path)
    if state is None:
        click.echo(f"swarm {cfg.swarm!r} is not running (no live supervisor for {cfg.data_path})", err=True)
        sys.exit(1)
    asyncio.run(stop_pid(state.pid, grace=grace))
    click.echo(f"swarm {cfg.swarm!r} stopped (supervisor pid {state.pid})")


@click.command()
@CONFIG
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--wait", "wait_for", type=float, default=0.0, show_default=True,
              help="Seconds to wait for a result not stored yet.")
@DATA_DIR
def result(config: Path, task_id: str, as_json: bool, wait_for: float, data_dir: Path | None) -> None:
    """Print the stored result of TASK_ID (exit 0 accepted, 1 exhausted or failed, 3 none stored)."""
    cfg = load_config(config, data_dir=data_dir, check_agents=False)

    async def run() -> Result | None:
        async with connect(cfg) as swarm:
            if wait_for <= 0:
                return await swarm.bus.get_result(task_id)
            try:
                return await swarm.result(task_id, timeout=wait_for)
            except TaskTimeout:
                return None

    found = asyncio.run(run())
    if found is None:
        click.echo(f"{task_id}: no result stored" + (f" within {wait_for:g}s" if wait_for > 0 else ""), err=True)
        sys.exit(3)
    click.echo(msgspec.json.encode(found).decode() if as_json else format_result(found))
    sys.exit(0 if found.status is ResultStatus.ACCEPTED else 1)


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
