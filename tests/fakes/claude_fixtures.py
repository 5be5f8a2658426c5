"""The fake Messages API and the swarm configs the Claude tests share: the `fake` server (with
its key in the environment) and `claude_config`, a dreamer whose reasoner is `anthropic` on it.
Registered as a pytest plugin in tests/conftest.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reverie.protocol import Result
from reverie.runtime import SwarmConfig, connect

from ..conftest import CRITICS, agents_running, load_task, make_config
from .messages_api import FakeAnthropic

__all__ = ["GOOD", "KEY", "agents", "candidate", "claude_config", "fake", "judge_agent", "solve"]

KEY = "sk-ant-test-key"
GOOD = ["enable_read_only", "backup", "migrate", "verify_checksums", "switch_traffic", "archive_old_tables"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    monkeypatch.setenv("REVERIE_TEST_ANTHROPIC_KEY", KEY)
    with FakeAnthropic(api_key=KEY) as server:
        yield server
    assert not server.errors, server.errors


def agents(url: str, *, mode: str = "sync", rounds: int = 3, k: int = 2, extra: str = "") -> str:
    return f"""
[[agents]]
name = "dreamer"
kind = "dreamer"
[agents.options]
reasoner = "anthropic"
candidates_per_round = {k}
max_rounds = {rounds}
max_seconds = 120
verdict_timeout = 10.0
[agents.options.reasoner_options]
base_url = "{url}"
api_key_env = "REVERIE_TEST_ANTHROPIC_KEY"
mode = "{mode}"
batch_poll = 0.1
overloaded_backoff = 0.05
outage_backoff = 0.05
effort = "high"
refine_effort = "low"
{extra}
""" + CRITICS


def judge_agent(url: str, constitution: list[str]) -> str:
    """An `llm-critic` named judge on the fake server."""
    return f"""
[[agents]]
name = "judge"
kind = "llm-critic"
[agents.options]
base_url = "{url}"
api_key_env = "REVERIE_TEST_ANTHROPIC_KEY"
constitution = {json.dumps(constitution)}
"""


def candidate(steps: list[str], why: str = "safe") -> dict[str, Any]:
    return {"steps": steps, "rationale": why}


@pytest.fixture
def claude_config(fake: FakeAnthropic, nats_url: str, tmp_path: Path) -> SwarmConfig:
    return make_config(nats_url, tmp_path / "data", agents=agents(fake.url))


async def solve(config: SwarmConfig, url: str, task_id: str = "t1") -> Result:
    async with agents_running(config, url), connect(config, servers=[url]) as swarm:
        return await swarm.submit(load_task("db-migration"), kind="plan", task_id=task_id, timeout=60)
