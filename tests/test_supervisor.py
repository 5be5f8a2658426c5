"""`reverie up` as a real process tree: ready line, restart of a killed agent, clean SIGTERM."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from reverie.protocol import ResultStatus
from reverie.runtime import AgentStartFailed, Supervisor, SwarmAlreadyRunning, connect, load_config
from reverie.runtime.process import pid_alive
from reverie.runtime.swarm.state import SwarmState, read_state, write_state

from .conftest import LOCAL_AGENTS, ROOT, eventually, load_task, run_cli


async def status_json(config: Path, data: Path) -> dict:
    proc = await asyncio.to_thread(run_cli, "status", str(config), "--json", "--data-dir", str(data))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def test_up_restarts_a_killed_agent_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = ROOT / "deploy" / "local.toml"
    data = tmp_path / "data"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reverie.runtime.cli", "up", str(config), "--data-dir", str(data),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lines: list[str] = []

    async def read_until(marker: str) -> str:
        assert proc.stdout is not None
        while True:
            raw = await proc.stdout.readline()
            assert raw, f"supervisor exited before printing {marker!r}:\n" + "\n".join(lines)
            line = raw.decode().rstrip()
            lines.append(line)
            if marker in line:
                return line

    try:
        ready = await asyncio.wait_for(read_until("ready:"), 60)
        assert "5 agent processes" in ready
        reader = asyncio.create_task(read_until("never printed"))  # keep draining the pipe

        before = await status_json(config, data)
        pids = {a["agent"]: a["pid"] for a in before["agents"]}
        assert sorted(pids) == ["budget", "dreamer", "planner", "rules", "sandbox"]
        state = read_state(data)
        assert state is not None and state.server_pid and pid_alive(state.server_pid)

        submitted = await asyncio.to_thread(
            run_cli, "submit", str(config), f"@{ROOT / 'deploy' / 'tasks' / 'db-migration.json'}", "--wait",
            "--json", "--data-dir", str(data))
        assert submitted.returncode == 0, submitted.stderr
        result = json.loads(submitted.stdout)
        assert result["status"] == "accepted" and result["rounds"] >= 2
        queued = await asyncio.to_thread(run_cli, "submit", str(config), '{"start": "a"}', "--id", "later",
                                         "--json", "--data-dir", str(data))
        assert json.loads(queued.stdout) == {"task_id": "later"}

        os.kill(pids["rules"], signal.SIGKILL)

        async def restarted() -> dict | None:
            now = await status_json(config, data)
            rules = [a for a in now["agents"] if a["agent"] == "rules"]
            return now if rules and rules[0]["pid"] != pids["rules"] else None

        after = await eventually(restarted, timeout=30, interval=0.2, what="rules to be restarted")
        assert len(after["agents"]) == 5
        assert any("rules exited with code -9; restarting" in line for line in lines)

        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
        reader.cancel()
        assert code == 0, "\n".join(lines)
        everyone = [a["pid"] for a in after["agents"]] + [state.server_pid]
        await eventually(lambda: _all_gone(everyone), timeout=5, what="every process to exit")
        assert read_state(data) is None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _all_gone(pids: list[int]) -> bool:
    return not any(_alive_not_zombie(p) for p in pids)


def _alive_not_zombie(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_killed_supervisor_leaves_nothing_running_and_up_starts_again(tmp_path: Path) -> None:
    """SIGKILL the supervisor: its workers notice and stop by themselves; the next `reverie up`
    stops the nats-server it left behind, then serves a task from the same data dir."""
    config = ROOT / "deploy" / "local.toml"
    data = tmp_path / "data"

    async def up() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reverie.runtime.cli", "up", str(config), "--data-dir", str(data),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert proc.stdout is not None
        seen: list[str] = []
        while b"ready:" not in (raw := await asyncio.wait_for(proc.stdout.readline(), 60)):
            assert raw, "supervisor exited before it was ready:\n" + "".join(seen)
            seen.append(raw.decode())
        asyncio.create_task(proc.stdout.read())  # keep draining the pipe  # noqa: RUF006
        return proc

    first = await up()
    second: asyncio.subprocess.Process | None = None
    try:
        workers = [a["pid"] for a in (await status_json(config, data))["agents"]]
        state = read_state(data)
        assert state is not None and state.server_pid and len(workers) == 5
        first.kill()
        await first.wait()
        await eventually(lambda: _all_gone(workers), timeout=30, what="orphaned workers to stop")
        assert pid_alive(state.server_pid)  # its own session: it outlived the supervisor

        second = await up()
        assert not _alive_not_zombie(state.server_pid)
        submitted = await asyncio.to_thread(
            run_cli, "submit", str(config), f"@{ROOT / 'deploy' / 'tasks' / 'dns-cutover.json'}", "--wait",
            "--json", "--data-dir", str(data))
        assert json.loads(submitted.stdout)["status"] == "accepted", submitted.stderr
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 15) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


BROKEN_AGENT = '''
from reverie.protocol import Result, Task
from reverie.runtime import Agent, handler


class Broken(Agent):
    async def on_start(self) -> None:
        raise RuntimeError("the database URL is wrong")

    @handler("task.broken")
    async def go(self, task: Task) -> Result | None:
        return None
'''


async def test_an_agent_that_crashes_at_start_fails_up_at_once_with_its_own_error(tmp_path: Path) -> None:
    (tmp_path / "broken_agent.py").write_text(BROKEN_AGENT)
    (tmp_path / "swarm.toml").write_text('swarm = "broken"\ndata_dir = "data"\nrestart_backoff = 0.1\n'
                                         'restart_backoff_max = 0.2\n[[agents]]\nname = "broken"\n'
                                         'kind = "broken_agent:Broken"\n')
    config = load_config(tmp_path / "swarm.toml")
    began = time.monotonic()
    log_file = await asyncio.to_thread(open, tmp_path / "swarm.log", "w")
    with log_file as log, pytest.raises(AgentStartFailed) as err:
        async with Supervisor(config, out=log):
            pass
    assert time.monotonic() - began < 30  # not the 60 s readiness timeout
    assert "broken exited 3 times before it was ready" in str(err.value)
    assert "the database URL is wrong" in str(err.value)
    assert read_state(config.data_path) is None  # the embedded server it started is stopped


async def test_a_hung_nats_server_is_restarted_though_its_process_lives(tmp_path: Path) -> None:
    """SIGSTOP: the pid is alive, JetStream answers nothing (as when a full disk disabled it).
    The supervisor's JetStream health check restarts it; queued work goes on."""
    (tmp_path / "swarm.toml").write_text('swarm = "hung"\ndata_dir = "data"\n' + LOCAL_AGENTS)
    config = load_config(tmp_path / "swarm.toml")
    with await asyncio.to_thread(open, tmp_path / "swarm.log", "w") as log:
        async with Supervisor(config, out=log, health_interval=0.3, health_failures=3) as sup:
            assert sup.server is not None and sup.server.pid is not None
            hung = sup.server.pid
            os.kill(hung, signal.SIGSTOP)
            try:
                async def restarted() -> bool:
                    state = read_state(config.data_path)
                    return state is not None and state.server_pid not in (None, hung) and sup.server.running
                await eventually(restarted, timeout=30, what="a new nats-server")
            finally:
                if pid_alive(hung):
                    os.kill(hung, signal.SIGKILL)
            async with connect(config) as swarm:
                result = await swarm.submit(load_task("dns-cutover"), kind="plan", timeout=60)
    assert result.status is ResultStatus.ACCEPTED
    assert "did not answer 3 JetStream health checks in a row" in (tmp_path / "swarm.log").read_text()


async def test_a_second_supervisor_for_a_live_swarms_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "swarm.toml").write_text('swarm = "dup"\ndata_dir = "data"\n' + LOCAL_AGENTS)
    config = load_config(tmp_path / "swarm.toml")
    config.data_path.mkdir(parents=True)
    live = SwarmState(swarm="dup", url="nats://127.0.0.1:1", pid=os.getpid(), started_at=0.0)
    write_state(config.data_path, live)
    with pytest.raises(SwarmAlreadyRunning, match="already running") as err:
        async with Supervisor(config, out=io.StringIO()):
            pass
    assert (err.value.swarm, err.value.pid, err.value.data_dir) == ("dup", os.getpid(), config.data_path)
    assert read_state(config.data_path) == live  # the live supervisor's state is left alone
