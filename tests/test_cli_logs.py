"""`reverie up`'s output as an operator reads it: timestamped text, or one JSON object per line."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

AGENTS = """
[[agents]]
name = "dreamer"
kind = "dreamer"
[[agents]]
name = "planner"
kind = "plan-critic"
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reverie.runtime.cli", *args], capture_output=True, text=True,
                          timeout=90)


def _up(tmp_path: Path, *flags: str, down: bool = False) -> list[str]:
    """Run `reverie up` until it is ready and one task is done, stop it (with `reverie down`, or
    SIGTERM), and return its lines."""
    config = tmp_path / "swarm.toml"
    config.write_text('swarm = "logs"\ndata_dir = "data"\n' + AGENTS)
    log = tmp_path / "up.log"
    with log.open("w") as out, subprocess.Popen([sys.executable, "-m", "reverie.runtime.cli", "up", str(config),
                                                 *flags], stdout=out, stderr=subprocess.STDOUT) as up:
        try:
            deadline = time.monotonic() + 60
            while "ready" not in log.read_text():
                assert up.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            task = Path(__file__).resolve().parent.parent / "deploy" / "tasks" / "dns-cutover.json"
            done = _cli("submit", str(config), f"@{task}", "--wait", "--quiet", "--id", "dns-1")
            assert done.returncode == 0, done.stdout + done.stderr
            stored = _cli("result", str(config), "dns-1")
            assert stored.returncode == 0 and stored.stdout.startswith("dns-1: accepted after"), stored.stdout
            none = _cli("result", str(config), "never-submitted")
            assert none.returncode == 3 and "no result stored" in none.stderr
            if down:
                stopped = _cli("down", str(config))
                assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
                assert up.wait(timeout=30) == 0  # down is a clean stop
                again = _cli("down", str(config))
                assert again.returncode == 1 and "is not running" in again.stderr
        finally:
            if up.poll() is None:
                up.send_signal(signal.SIGTERM)
                up.wait(timeout=30)
    return log.read_text().splitlines()


def test_up_json_prints_only_json_objects_the_ready_line_included(tmp_path: Path) -> None:
    lines = _up(tmp_path, "--json", "--log-level", "debug", "--metrics-port", "0", down=True)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    [ready] = [r for r in records if r.get("event") == "ready"]
    assert ready["swarm"] == "logs" and ready["agents"] == 2 and ready["url"].startswith("nats://")
    [metrics] = [r for r in records if r.get("event") == "metrics"]
    assert metrics["port"] > 0 and metrics["msg"] == f"metrics on http://127.0.0.1:{metrics['port']}/metrics"
    from_agents = [r for r in records if "agent" in r]
    assert {r["agent"] for r in from_agents} >= {"dreamer", "planner"}
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    assert any(r["level"] == "DEBUG" for r in from_agents)  # --log-level reached the agents
    assert records[-1]["msg"] == "swarm stopped"


def test_up_text_lines_carry_timestamps_and_levels(tmp_path: Path) -> None:
    lines = _up(tmp_path)
    agent_lines = [line for line in lines if line.startswith(("dreamer | ", "planner | "))]
    assert agent_lines
    stamp = re.compile(r"^\w+ \| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) ")
    assert all(stamp.match(line) for line in agent_lines if " | Traceback" not in line), agent_lines[:5]
    assert not any(" DEBUG " in line for line in agent_lines)  # INFO by default
