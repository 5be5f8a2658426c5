"""What a user can get wrong, refused at once with a clear error (issue 10): oversized tasks,
malformed inline JSON, a kind nobody serves, a critic name that is not an agent, a custom
critic whose verdicts name another critic, a resubmitted finished task, a lost data key. Real
nats-server, real LMDB, the real CLI as a subprocess."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest

from reverie.protocol import Candidate, Decision, ResultStatus, StatusRequest, Task, Verdict
from reverie.runtime import Agent, Bus, ConfigError, QueueFull, TaskTooLarge, connect, handler
from reverie.runtime.memory import DataKeyMissing, MemoryStore

from .conftest import LOCAL_AGENTS, agents_running, load_task, make_config, run_cli


def config_file(tmp_path: Path, url: str, agents: str = LOCAL_AGENTS) -> Path:
    path = tmp_path / "swarm.toml"
    path.write_text(f'swarm = "guards"\ndata_dir = "data"\n[nats]\nurl = "{url}"\n{agents}')
    return path


async def test_an_oversized_task_is_refused_before_it_is_sent_and_says_the_limit(swarm) -> None:
    with pytest.raises(TaskTooLarge) as err:
        await swarm.publish(Task(id="big", kind="plan", input="x" * 700_000))
    assert err.value.size > 700_000 and err.value.limit == swarm.config.max_message_bytes
    assert "max_message_bytes" in str(err.value)
    assert (await swarm.status()).tasks_queued == 0


def test_the_cli_says_an_oversized_task_is_over_the_limit_in_one_line(tmp_path: Path, nats_url: str) -> None:
    path = config_file(tmp_path, nats_url)
    (tmp_path / "big.json").write_text('{"blob": "' + "x" * 2_000_000 + '"}')
    proc = run_cli("submit", str(path), f"@{tmp_path / 'big.json'}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "over this swarm's limit of 524,288" in lines[0], proc.stderr


def test_malformed_inline_json_is_said_at_submit_time(tmp_path: Path) -> None:
    path = config_file(tmp_path, "nats://127.0.0.1:1")  # never reached: refused before connecting
    proc = run_cli("submit", str(path), '{"start": "a", "goal": ')
    assert proc.returncode == 2 and "looks like JSON but is not valid JSON" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_kind_no_agent_serves_is_refused_unless_queued_anyway(tmp_path: Path, nats_url: str) -> None:
    path = config_file(tmp_path, nats_url)
    proc = run_cli("submit", str(path), "{}", "--kind", "plann")
    assert proc.returncode == 2, proc.stderr
    assert "no agent of" in proc.stderr and "kind 'plann'" in proc.stderr and "serves: code, plan" in proc.stderr
    queued = run_cli("submit", str(path), "{}", "--kind", "plann", "--queue-anyway", "--id", "elsewhere")
    assert queued.returncode == 0 and queued.stdout.strip() == "elsewhere", queued.stderr


def test_a_critic_name_that_is_not_an_agent_is_a_config_error(tmp_path: Path) -> None:
    agents = LOCAL_AGENTS.replace("[agents.options]\n", '[agents.options]\ncritics = ["rules", "plannr"]\n', 1)
    with pytest.raises(ConfigError) as err:
        make_config("nats://127.0.0.1:4222", tmp_path / "d", agents=agents)
    assert err.value.field == "$.agents[0].options.critics[1]"
    assert "'plannr' is not an agent of this config" in err.value.problem and "planner" in err.value.problem


class Impostor(Agent):
    """A custom critic that names another critic in its verdicts (a copy-paste bug)."""

    role: ClassVar[str] = "critic"

    @handler("dream.*.cand")
    async def judge(self, cand: Candidate) -> Verdict:
        return Verdict(candidate_id=cand.id, critic="someone-else", decision=Decision.ACCEPT, score=1.0)


async def test_verdicts_naming_another_critic_are_counted_and_said_once(
        nats_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    agents = LOCAL_AGENTS.replace("verdict_timeout = 5.0", "verdict_timeout = 1.0\nverdict_attempts = 1") + f"""
[[agents]]
name = "mine"
kind = "{__name__}:Impostor"
"""
    config = make_config(nats_url, tmp_path / "data", agents=agents)
    with caplog.at_level(logging.WARNING):
        async with agents_running(config, nats_url) as hosts, connect(config, servers=[nats_url]) as swarm:
            result = await swarm.submit(load_task("dns-cutover"), kind="plan", timeout=60)
            counters = hosts["dreamer"].agent.ctx.counters
    assert counters["verdicts.misnamed"] >= 1
    said = [r for r in caplog.records if "names critic 'someone-else'" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]
    judged = [j for r in result.trace for j in r.candidates]
    assert all("mine" in j.missing for j in judged)


async def test_resubmitting_a_finished_task_returns_its_stored_result_at_once(swarm) -> None:
    spec = load_task("dns-cutover")
    first = await swarm.submit(spec, kind="plan", task_id="again", timeout=30)
    began = time.monotonic()
    second = await swarm.submit(spec, kind="plan", task_id="again", timeout=30)
    assert time.monotonic() - began < 5  # not the whole timeout
    assert first.status is ResultStatus.ACCEPTED
    assert second.task_id == "again" and second.finished_at == first.finished_at


def test_a_lost_data_key_is_never_replaced_by_a_new_one(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    with MemoryStore.open(directory, agent="dreamer") as store:
        batch = store.batch()
        batch.put("/notes/kept", b"what we learned")
        store.commit(batch)
    key = (directory / "data.key").read_bytes()
    (directory / "data.key").unlink()
    with pytest.raises(DataKeyMissing) as err:
        MemoryStore.open(directory, agent="dreamer")
    assert "Restore data.key from a backup" in str(err.value) and err.value.path == directory / "data.key"
    assert not (directory / "data.key").exists()  # nothing created over the existing store
    (directory / "data.key").write_bytes(key)
    (directory / "data.key").chmod(0o600)
    with MemoryStore.open(directory, agent="dreamer") as store:
        got = store.get("/notes/kept")
    assert got is not None and got.content == b"what we learned"


@pytest.mark.parametrize(("url", "says"), [
    pytest.param("embeded", 'did you mean "embedded"?', id="typo"),
    pytest.param("http://127.0.0.1:4222", "has scheme 'http'", id="scheme"),
    pytest.param("nats://127.0.0.1:4222,", "is empty", id="trailing-comma"),
    pytest.param("nats://:4222", "names no host", id="no-host"),
])
def test_a_nats_url_that_cannot_be_right_is_a_config_error(tmp_path: Path, url: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(url, tmp_path / "d")
    assert err.value.field == "$.nats.url" and says in err.value.problem, err.value.problem


async def test_a_request_nobody_listens_to_ends_at_once_with_no_reply(nats_url: str) -> None:
    """The server's "no responders" status is no reply (a gossip peer that is down is not a
    malformed answer) and ends the wait at once instead of after the timeout."""
    async with await Bus.connect([nats_url], swarm="nobody", name="t") as bus:
        began = time.monotonic()
        replies = await bus.request_many("rv.nobody.gossip.gone", StatusRequest(), expect=1, timeout=10)
    assert replies == [] and time.monotonic() - began < 5


def unreachable(tmp_path: Path, connect_timeout: float) -> Path:
    path = tmp_path / "far.toml"
    path.write_text(f'swarm = "far"\ndata_dir = "data"\n[nats]\nurl = "nats://127.0.0.1:1"\n'
                    f'connect_timeout = {connect_timeout}\n' + LOCAL_AGENTS)
    return path


@pytest.mark.parametrize("command", ["status", "submit", "up"])
def test_an_unreachable_server_gives_up_after_connect_timeout_in_one_line(tmp_path: Path, command: str) -> None:
    args = [command, str(unreachable(tmp_path, 1.0))] + (["{}"] if command == "submit" else [])
    began = time.monotonic()
    proc = run_cli(*args, timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert time.monotonic() - began < 15
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach NATS at nats://127.0.0.1:1 within 1s" in lines[0], proc.stderr


def test_up_honours_sigterm_while_it_is_still_connecting(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "reverie.runtime.cli", "up", str(unreachable(tmp_path, 60.0))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # said just before it connects
        assert "created gossip keys" in first, first
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped while starting" in out


async def test_streams_are_bounded_and_a_full_queue_is_a_clear_error(nats_url: str, tmp_path: Path) -> None:
    config = make_config(nats_url, tmp_path / "d", extra="[streams.tasks]\nmax_msgs = 2\nmax_bytes = 65536\n"
                                                          "[streams.results]\nmax_age = 3600.0\n")
    async with connect(config, servers=[nats_url]) as swarm:
        s = swarm.bus.subjects
        tasks = (await swarm.bus.js.stream_info(s.tasks_stream)).config
        results = (await swarm.bus.js.stream_info(s.results_stream)).config
        assert (tasks.max_msgs, tasks.max_bytes, str(tasks.discard)) == (2, 65536, "new")
        assert results.max_age == 3600.0 and results.max_bytes == 512 << 20 and str(results.discard) == "old"
        for i in range(2):
            await swarm.publish(Task(id=f"q{i}", kind="nobody", input=None))
        with pytest.raises(QueueFull, match=r"the task queue is full .*maximum messages exceeded"):
            await swarm.publish(Task(id="q2", kind="nobody", input=None))
        assert (await swarm.status()).tasks_queued == 2  # nothing queued was dropped for it
