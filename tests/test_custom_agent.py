"""The README's custom-agent example, run exactly as written, in a swarm of real processes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from reverie.protocol import ResultStatus
from reverie.runtime import Supervisor, connect, load_config

from .conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def readme_example(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w+\n(.*?)```", text, re.S)
    assert match, f"README.md has no example block {name}"
    return match.group(1)


def test_readme_example_is_short() -> None:
    code = readme_example("echo_agent.py")
    assert len(code.strip().splitlines()) < 20


@pytest.fixture
def swarm_log(tmp_path: Path) -> Iterator[TextIO]:
    """Where the supervisor writes its agents' output (opened here: no blocking open on the loop)."""
    with open(tmp_path / "swarm.log", "w") as log:
        yield log


async def test_readme_custom_agent_receives_a_task_and_replies(tmp_path: Path, swarm_log: TextIO) -> None:
    (tmp_path / "echo_agent.py").write_text(readme_example("echo_agent.py"))
    (tmp_path / "my-swarm.toml").write_text('swarm = "mine"\ndata_dir = "data"\n\n' + readme_example("echo.toml"))
    config = load_config(tmp_path / "my-swarm.toml")
    async with Supervisor(config, out=swarm_log), connect(tmp_path / "my-swarm.toml") as swarm:
        result = await swarm.submit("hello", kind="echo", timeout=30)
        # and as the README's command line shows it
        said = await asyncio.to_thread(run_cli, "submit", str(tmp_path / "my-swarm.toml"), "hello", "--kind", "echo",
                                       "--wait")
    assert said.returncode == 0, said.stderr
    assert "accepted" in said.stdout and "answer: HELLO" in said.stdout
    swarm_log.flush()
    assert result.status is ResultStatus.ACCEPTED
    assert result.answer == "HELLO"
    assert result.agent == "echo"
    assert "echoing task" in (tmp_path / "swarm.log").read_text()


def test_readme_python_client_example_runs_as_written(tmp_path: Path) -> None:
    """Saved as a file and run from the checkout against `reverie up deploy/local.toml`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "client.py"
    script.write_text(readme_example("client.py"))
    env = {**os.environ, "REVERIE_DATA_DIR": str(tmp_path / "data")}  # the swarm's data stays in the test's folder
    log = tmp_path / "up.log"
    up_cmd = [sys.executable, "-m", "reverie.runtime.cli", "up", "deploy/local.toml"]
    with log.open("w") as out, subprocess.Popen(up_cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT) as up:
        try:
            deadline = time.monotonic() + 60
            while "' ready:" not in log.read_text():
                assert up.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            ran = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=120)
        finally:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=30)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("accepted ['enable_read_only', 'backup'") and lines[0].endswith(" 2")
    assert "round 1" in lines  # the progress callback saw the second task's round (lessons recalled: one is enough)
    assert "[<ResultStatus.ACCEPTED: 'accepted'>, <ResultStatus.ACCEPTED: 'accepted'>, " in ran.stdout
    assert lines[-1] == "5 agents"
