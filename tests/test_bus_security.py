"""A bus where no agent can pose as another: NKey users with per-agent subject permissions,
checked against a real nats-server started with the generated authorization, and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import nats.errors
import nkeys
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from reverie.protocol import (
    Candidate,
    Codec,
    Decision,
    ResultStatus,
    Task,
    Verdict,
    encode,
)
from reverie.runtime import (
    Bus,
    EmbeddedNats,
    NotAuthorized,
    SwarmConfig,
    parse_config,
    serve_agent,
)
from reverie.runtime.bus.credentials import ADMIN, CLIENT, ensure_users, seed_path
from reverie.runtime.bus.taskctl import TaskControl
from reverie.runtime.swarm.permissions import authorization_block, permissions

from .conftest import ROOT, eventually, load_task, run_cli

AGENTS = """
[[agents]]
name = "dreamer"
kind = "dreamer"
[agents.options]
critics = ["planner"]
candidates_per_round = 1
max_rounds = 1
verdict_timeout = 0.5
verdict_attempts = 1

[[agents]]
name = "rules"
kind = "rule-critic"

[[agents]]
name = "planner"
kind = "plan-critic"
"""


class Secured(msgspec.Struct):
    config: SwarmConfig
    url: str


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Secured]:
    """A real nats-server with the swarm's generated users and permissions; the config points
    at it as an existing deployment (`nats.nkey_seed_dir`), as an operator would."""
    text = f'swarm = "sec"\n[nats]\nurl = "nats://127.0.0.1:1"\nnkey_seed_dir = "{tmp_path / "seeds"}"\n{AGENTS}'
    config = parse_config(text, source="<test>", data_dir=tmp_path / "data")
    block = authorization_block(config, ensure_users(config))
    async with EmbeddedNats(tmp_path / "nats", authorization=block) as server:
        # as `reverie up` does before any agent starts: only `_admin` may create streams
        async with await Bus.connect([server.url], swarm="sec", name="admin", user=ADMIN,
                                     nkeys_seed=seed_path(config, ADMIN)) as admin:
            await admin.ensure_streams()
            await TaskControl.open(admin)
        nats_cfg = msgspec.structs.replace(config.nats, url=server.url)
        yield Secured(msgspec.structs.replace(config, nats=nats_cfg), server.url)


class Conn:
    """A raw nats-py connection as `user` that records the server's asynchronous errors."""

    def __init__(self) -> None:
        self.nc = Client()
        self.errors: list[str] = []
        self.violation = asyncio.Event()

    async def _error(self, exc: Exception) -> None:
        self.errors.append(str(exc))
        if "permissions violation" in str(exc).lower():
            self.violation.set()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, sec: Secured, user: str) -> AsyncIterator[Conn]:
        conn = cls()
        await conn.nc.connect(sec.url, nkeys_seed=str(seed_path(sec.config, user)), error_cb=conn._error,
                              allow_reconnect=False, inbox_prefix=f"rv.sec.inbox.{user}")
        try:
            yield conn
        finally:
            await conn.nc.close()

    async def refused(self, subject: str) -> str:
        """Wait for the server to refuse a publish or subscription on `subject`."""
        try:
            await asyncio.wait_for(self.violation.wait(), 10)
        except TimeoutError:
            raise AssertionError(f"no violation for {subject}: {self.errors}") from None
        self.violation.clear()
        [error] = [e for e in self.errors if subject in e] or [f"not in {self.errors}"]
        self.errors.clear()
        return error


async def refused_to_connect(url: str, **credentials: Any) -> str:
    nc = Client()
    try:
        with pytest.raises(nats.errors.Error) as caught:
            await nc.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5,
                             error_cb=_ignore, **credentials)
    finally:
        await nc.close()
    return str(caught.value)


async def _ignore(exc: Exception) -> None:
    pass


async def test_no_credentials_or_an_unknown_nkey_cannot_connect(secured: Secured) -> None:
    assert "authorization violation" in (await refused_to_connect(secured.url)).lower()
    stranger = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
    assert "authorization violation" in (await refused_to_connect(secured.url, nkeys_seed_str=stranger)).lower()
    with pytest.raises(NotAuthorized):  # the bus fails at once instead of retrying forever
        await asyncio.wait_for(Bus.connect([secured.url], swarm="sec", name="anon", user=CLIENT), 10)
    async with Conn.open(secured, "rules") as rules:
        assert rules.nc.is_connected


async def test_a_critic_cannot_publish_a_result_a_task_or_consume_tasks(secured: Secured) -> None:
    async with await Bus.connect([secured.url], swarm="sec", name="admin", user=ADMIN,
                                 nkeys_seed=seed_path(secured.config, ADMIN)) as admin, \
            Conn.open(secured, "rules") as rules, Conn.open(secured, "dreamer") as dreamer:
        await admin.ensure_streams()
        subjects = admin.subjects
        seen: list[str] = []
        sentinel = asyncio.Event()

        async def capture(msg: Msg) -> None:
            seen.append(msg.subject)
            if msg.subject.endswith(".sentinel"):
                sentinel.set()

        await admin.nc.subscribe(subjects.all_results, cb=capture)
        await admin.nc.subscribe(subjects.all_tasks, cb=capture)
        await admin.nc.flush()

        await rules.nc.publish(subjects.result("t1"), b"forged result")
        assert "publish" in (await rules.refused(subjects.result("t1"))).lower()
        await rules.nc.publish(subjects.task("plan"), b"forged task")
        await rules.refused(subjects.task("plan"))
        js = rules.nc.jetstream(timeout=0.5)
        with pytest.raises(nats.errors.TimeoutError):  # dropped by the server: no ack ever comes
            await js.publish(subjects.result("t2"), b"forged stored result")
        await rules.refused(subjects.result("t2"))
        with pytest.raises(nats.errors.TimeoutError):
            await js.pull_subscribe(subjects.task("plan"), durable="rules", stream=subjects.tasks_stream)
        await rules.refused(f"$JS.API.CONSUMER.INFO.{subjects.tasks_stream}.rules")
        await rules.nc.flush()  # the server has dealt with every forgery before the sentinel

        await dreamer.nc.publish(subjects.result("sentinel"), b"allowed")
        await asyncio.wait_for(sentinel.wait(), 10)
        assert seen == [subjects.result("sentinel")]
        with pytest.raises(nats.js.errors.NotFoundError):
            await admin.js.get_last_msg(subjects.results_stream, subjects.result("t2"))


async def test_a_critic_cannot_reply_as_another_critic(secured: Secured) -> None:
    config = secured.config
    async with await Bus.connect([secured.url], swarm="sec", name="dreamer", user="dreamer",
                                 nkeys_seed=seed_path(config, "dreamer")) as dreamer, \
            Conn.open(secured, "rules") as rules:
        assert dreamer.authenticated
        subjects = dreamer.subjects
        replied_to: list[str] = []

        async def impostor(msg: Msg) -> None:
            replied_to.append(msg.reply)
            forged = encode(Verdict(candidate_id="c1", critic="planner", decision=Decision.ACCEPT))
            await rules.nc.publish(f"{msg.reply}.planner", forged)   # refused by the server
            await rules.nc.publish(f"{msg.reply}.rules", forged)     # delivered, but names its sender

        await rules.nc.subscribe(subjects.all_candidates, queue="rules", cb=impostor)
        await rules.nc.flush()
        cand = Candidate(id="c1", task=Task(id="t1", kind="plan", input={}), round=1, index=0,
                         steps=("a",), text="a")
        [reply] = await dreamer.request_many(subjects.candidate("t1"), cand, expect=1, timeout=10)
        assert reply.sender == "rules"  # the forged `.planner` reply, published first, never arrived
        assert replied_to[0].startswith(subjects.replies("dreamer") + ".")
        await rules.refused(f"{replied_to[0]}.planner")
        # nor read another requester's inbox (it may answer on one only in its own name)
        await rules.nc.subscribe(f"{subjects.replies('dreamer')}.>")
        await rules.refused(f"{subjects.replies('dreamer')}.>")


async def test_the_dreamer_counts_no_verdict_a_critic_forged_for_another(
        secured: Secured, caplog: pytest.LogCaptureFixture) -> None:
    """`rules`, with its own valid seed, answers every candidate with a Verdict that claims to
    be from `planner` (the only critic the dreamer waits for): the dreamer must not count it."""
    config = secured.config
    judged = asyncio.Event()

    async with Conn.open(secured, "rules") as rules:
        async def impostor(msg: Msg) -> None:
            cand = Codec(Candidate).decode(msg.data)
            forged = Verdict(candidate_id=cand.id, critic="planner", decision=Decision.ACCEPT)
            await rules.nc.publish(f"{msg.reply}.rules", encode(forged))
            judged.set()

        await rules.nc.subscribe(f"rv.{config.swarm}.dream.*.cand", queue="rules", cb=impostor)
        await rules.nc.flush()
        caplog.set_level(logging.WARNING, logger="reverie.agent.dreamer")
        async with serve_agent(config, "dreamer", servers=[secured.url]) as host:
            async with await Bus.connect([secured.url], swarm="sec", name="client", user=CLIENT,
                                         nkeys_seed=seed_path(config, CLIENT)) as client:
                task = Task(id="forged1", kind="plan", input=load_task("dns-cutover"))
                assert await client.submit(task)
                result = await eventually(lambda: client.get_result(task.id), timeout=30, what="a result")
            assert judged.is_set()
            assert result.status is not ResultStatus.ACCEPTED
            [judgement] = [j for r in result.trace for j in r.candidates]
            assert judgement.verdicts == () and judgement.missing == ("planner",)
            assert host.counters["verdicts.impostor"] >= 1
    assert any("claims critic 'planner' but was sent by 'rules'" in r.getMessage() for r in caplog.records)


def test_permissions_follow_each_agents_role(secured: Secured) -> None:
    perms = permissions(secured.config)
    dreamer, rules, client = (perms[u]["publish"]["allow"] for u in ("dreamer", "rules", CLIENT))
    assert "rv.sec.result.>" in dreamer and "rv.sec.dream.>" in dreamer
    assert not any(p.startswith(("rv.sec.result", "rv.sec.task", "rv.sec.dream", "$JS", "$KV")) for p in rules)
    assert "rv.sec.reply.*.*.*.rules" in rules and "rv.sec.reply.*.*.*.planner" not in rules
    assert "rv.sec.task.>" in client and "rv.sec.result.>" not in client
    assert perms[ADMIN] == {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    assert "rv.sec.dream.*.cand" in perms["rules"]["subscribe"]["allow"]


async def test_up_with_tls_and_auth_serves_a_verified_client_only_and_never_shows_a_seed(tmp_path: Path) -> None:
    """`reverie up --tls` on the packaged local config (auth on by default): `reverie submit
    --wait` works; no client without the CA, nor one without credentials, gets in; seeds are
    0600 and appear in no output, log or server config."""
    config = ROOT / "deploy" / "local.toml"
    data = tmp_path / "data"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reverie.runtime.cli", "up", str(config), "--tls", "--data-dir", str(data),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lines: list[str] = []

    async def read_until(marker: str) -> None:
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            lines.append(raw.decode().rstrip())
            if marker in lines[-1]:
                return
        raise AssertionError(f"supervisor exited before printing {marker!r}:\n" + "\n".join(lines))

    try:
        await asyncio.wait_for(read_until("ready:"), 60)
        reader = asyncio.create_task(read_until("never printed"))
        url = json.loads((data / "swarm.json").read_text())["url"]
        assert url.startswith("tls://")

        submitted = await asyncio.to_thread(
            run_cli, "submit", str(config), f"@{ROOT / 'deploy' / 'tasks' / 'dns-cutover.json'}", "--wait",
            "--json", "--data-dir", str(data))
        assert submitted.returncode == 0, submitted.stderr
        assert json.loads(submitted.stdout)["status"] == "accepted"

        ca = ssl.create_default_context(cafile=str(data / "keys" / "tls" / "ca.pem"))
        with pytest.raises(NotAuthorized):  # TLS verified, but no credentials
            await asyncio.wait_for(Bus.connect([url], swarm="local", name="anon", tls=ca), 15)
        with pytest.raises(ssl.SSLCertVerificationError):  # a client that does not trust the swarm's CA
            await asyncio.wait_for(_handshake(url, ssl.create_default_context()), 15)
        await asyncio.wait_for(_handshake(url, ca), 15)  # while one that does gets through
        with pytest.raises(OSError, match="refused"):
            await _plain_session(url)

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0, "\n".join(lines)
        reader.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    seeds = sorted((data / "keys" / "nats").glob("*.nk"))
    assert [p.stem for p in seeds] == sorted(["dreamer", "rules", "planner", "budget", "sandbox", CLIENT, ADMIN])
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in seeds)
    assert stat.S_IMODE((data / "keys" / "tls" / "server.key").stat().st_mode) == 0o600
    shown = "\n".join(lines) + submitted.stdout + submitted.stderr
    shown += (data / "nats" / "nats-server.log").read_text() + (data / "nats" / "nats-server.json").read_text()
    for seed in seeds:
        secret = seed.read_text()
        assert secret.startswith("SU") and secret not in shown and secret[2:20] not in shown


async def _handshake(url: str, context: ssl.SSLContext) -> None:
    """Read the server's INFO, then upgrade to TLS as a NATS client does (nats-py's own
    `close()` hangs after a failed handshake, so this speaks the protocol directly)."""
    host, _, port = url.removeprefix("tls://").rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        assert (await reader.readline()).startswith(b"INFO ")
        await writer.start_tls(context, server_hostname=host)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _plain_session(url: str) -> None:
    """Speak plain NATS to a TLS-only server: it must not take a CONNECT before a handshake."""
    host, _, port = url.removeprefix("tls://").rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        info = await asyncio.wait_for(reader.readline(), 10)
        assert info.startswith(b"INFO ") and json.loads(info[5:])["tls_required"] is True
        writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 10)
        if answer.startswith(b"PONG"):
            raise AssertionError("a TLS-only server answered a plain-text client")
        raise OSError(f"refused: {answer!r}")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
