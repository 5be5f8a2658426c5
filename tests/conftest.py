"""Fixtures: a real nats-server per test on a free loopback port, agents on the real bus.

A missing nats-server binary fails these fixtures (NatsServerNotFound); nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reverie.runtime import (
    EmbeddedNats,
    Supervisor,
    SwarmConfig,
    connect,
    load_config,
    parse_config,
    serve_agent,
)

pytest_plugins = ["tests.fakes.claude_fixtures"]
ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "deploy" / "tasks"
DATA = Path(__file__).resolve().parent / "data"

T = TypeVar("T")


def load_task(name: str) -> Any:
    path = DATA / f"{name}.json" if (DATA / f"{name}.json").exists() else TASKS / f"{name}.json"
    return json.loads(path.read_text())


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0,  # noqa: ASYNC109 - a poll-with-deadline helper: the deadline is its argument
                     interval: float = 0.05, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


@pytest.fixture
async def nats_url(tmp_path: Path) -> AsyncIterator[str]:
    async with EmbeddedNats(tmp_path / "nats") as server:
        yield server.url


CRITICS = """
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
"""
"""The local swarm's three critics (rules, planner, budget)."""

LOCAL_AGENTS = """
[[agents]]
name = "dreamer"
kind = "dreamer"
concurrency = 64
[agents.options]
candidates_per_round = 3
max_rounds = 5
max_seconds = 30
verdict_timeout = 5.0
[agents.options.reasoner_options]
seed = 7
""" + CRITICS


def make_config(url: str, data_dir: Path, agents: str = LOCAL_AGENTS, swarm: str = "test",
                extra: str = "") -> SwarmConfig:
    text = f'swarm = "{swarm}"\n{extra}\n[nats]\nurl = "{url}"\n{agents}'
    return parse_config(text, source="<test>", data_dir=data_dir)


@pytest.fixture
def config(nats_url: str, tmp_path: Path) -> SwarmConfig:
    return make_config(nats_url, tmp_path / "data")


@contextlib.asynccontextmanager
async def agents_running(config: SwarmConfig, url: str,
                         names: list[str] | None = None) -> AsyncIterator[dict[str, Any]]:
    """Every agent of `config` (or `names`) served in this event loop, ready on entry."""
    hosts: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        for spec in config.agents:
            if names is None or spec.name in names:
                hosts[spec.name] = await stack.enter_async_context(serve_agent(config, spec.name, servers=[url]))
        yield hosts


@pytest.fixture
async def swarm(config: SwarmConfig, nats_url: str) -> AsyncIterator[Any]:
    """The local swarm's four agents in-process on a real server, and a connected client."""
    async with agents_running(config, nats_url) as hosts, connect(config, servers=[nats_url]) as client:
        client.hosts = hosts
        yield client


@contextlib.asynccontextmanager
async def process_swarm(tmp_path: Path, log_name: str = "swarm.log") -> AsyncIterator[tuple[Supervisor, Any]]:
    path = tmp_path / "swarm.toml"
    path.write_text('swarm = "cont"\ndata_dir = "data"\nrestart_backoff = 0.2\nrestart_backoff_max = 1.0\n'
                    + LOCAL_AGENTS)
    config = load_config(path)
    with await asyncio.to_thread(open, tmp_path / log_name, "w") as log:
        async with Supervisor(config, out=log) as sup, connect(config) as swarm:
            yield sup, swarm


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> Any:
    import subprocess

    return subprocess.run([sys.executable, "-m", "reverie.runtime.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)
