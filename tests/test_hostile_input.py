"""Bad input that got past every guard (issue 10): nesting bombs on every subject an agent
serves, and task ids that only our own client used to check, published raw as `_client`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
import pytest
from nats.aio.msg import Msg

from reverie.protocol import (
    DEFAULT_MAX_DEPTH,
    MAX_TASK_ID,
    AgentStatus,
    Candidate,
    Codec,
    Error,
    InvalidTaskId,
    NestingTooDeep,
    Result,
    ResultStatus,
    StatusRequest,
    Task,
    TaskQuery,
    check_task_id,
    encode,
)
from reverie.runtime import Bus, EmbeddedNats, Swarm, SwarmConfig, connect, parse_config
from reverie.runtime.bus.credentials import ADMIN, ensure_users, seed_path
from reverie.runtime.bus.taskctl import TaskControl
from reverie.runtime.gossip.provision import ensure_keys
from reverie.runtime.gossip.wire import SyncRequest
from reverie.runtime.swarm.permissions import authorization_block

from .conftest import LOCAL_AGENTS, agents_running, eventually, load_task, make_config

PLANT = "@@planted@@"
"""Stands in a message for raw msgpack bytes that no encoder of ours would write."""

AGENTS = ("budget", "dreamer", "planner", "rules")
CRITICS = ("budget", "planner", "rules")
ANSWERS: Codec[Error | AgentStatus] = Codec(Error | AgentStatus)


def arrays(depth: int) -> bytes:
    """`[[[...[nil]...]]]`, `depth` arrays deep: one byte a level."""
    return b"\x91" * depth + b"\xc0"


def maps(depth: int) -> bytes:
    """`{"k": {"k": ... nil}}`, `depth` maps deep."""
    return b"\x81\xa1k" * depth + b"\xc0"


def planted(message: msgspec.Struct, value: bytes) -> bytes:
    """`message` encoded, with the raw msgpack `value` where the string PLANT stood."""
    marker = msgspec.msgpack.encode(PLANT)
    data = encode(message)
    assert data.count(marker) == 1
    return data.replace(marker, value)


def with_extra_field(message: msgspec.Struct, value: bytes) -> bytes:
    """`message` encoded with one more (unknown) field holding the raw msgpack `value`:
    decoders skip unknown fields, and skipping recurses as decoding does."""
    data = encode(message)
    assert 0x80 <= data[0] < 0x8F, "a fixmap with room for one more field"
    return bytes([data[0] + 1]) + data[1:] + msgspec.msgpack.encode("zz") + value


def task(input: Any = None, task_id: str = "t1") -> Task:
    return Task(id=task_id, kind="plan", input=input)


def task_bombs(n: int) -> list[bytes]:
    """`n` undecodable tasks of four shapes, each about 1-3 KB and 1,000 levels deep."""
    shapes = [planted(task(PLANT), arrays(1000)), planted(task(PLANT), maps(1000)),
              with_extra_field(task(), arrays(1000)), arrays(1000)]
    return [shapes[i % len(shapes)] for i in range(n)]


# ------------------------------------------------------------------ the codec


@pytest.mark.parametrize("data", [
    pytest.param(planted(task(PLANT), arrays(1000)), id="arrays-in-input"),
    pytest.param(planted(task(PLANT), maps(1000)), id="maps-in-input"),
    pytest.param(planted(task(PLANT), b"\xdc\x00\x01" * 1000 + b"\xc0"), id="array16-heads"),
    pytest.param(planted(task(PLANT), arrays(200_000)), id="200k-levels"),
    pytest.param(with_extra_field(task(), arrays(1000)), id="unknown-field"),
    pytest.param(arrays(1000), id="whole-payload"),
    pytest.param(planted(task(PLANT), arrays(DEFAULT_MAX_DEPTH)), id="one-past-the-limit"),
])
def test_a_nesting_bomb_raises_a_typed_error_naming_the_limit(data: bytes) -> None:
    with pytest.raises(NestingTooDeep) as caught:
        Codec(Task).decode(data)
    assert caught.value.reason == "too_deep" and caught.value.max_depth == DEFAULT_MAX_DEPTH
    assert f"limit of {DEFAULT_MAX_DEPTH} levels" in caught.value.detail and caught.value.size == len(data)


def test_deep_but_legal_input_still_decodes() -> None:
    codec: Codec[Task] = Codec(Task)
    for depth in (50, DEFAULT_MAX_DEPTH - 1):  # the Task's own map is one level
        decoded = codec.decode(planted(task(PLANT), arrays(depth)))
        value, levels = decoded.input, 0
        while isinstance(value, list):
            value, levels = value[0], levels + 1
        assert levels == depth and value is None
    shallow = Codec(Task, max_depth=8)
    with pytest.raises(NestingTooDeep, match="limit of 8 levels"):
        shallow.decode(planted(task(PLANT), arrays(8)))


def test_strings_and_bytes_that_look_like_nesting_are_not_nesting() -> None:
    looks_deep = {"text": "\x91" * 5000, "blob": b"\x91" * 70_000, "ext": msgspec.msgpack.Ext(1, b"\x91" * 300)}
    assert Codec(Task).decode(encode(task(looks_deep))).input == looks_deep


def stack_depth() -> int:
    frame: FrameType | None = sys._getframe(1)
    depth = 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_a_decode_from_a_deep_stack_never_raises_recursion_error() -> None:
    """Within the limit, but called with 40 frames left before Python's recursion limit
    (msgspec counts its levels against it on 3.11): decoded, or a typed error."""
    data = planted(task(PLANT), arrays(DEFAULT_MAX_DEPTH - 1))
    outcomes: list[str] = []

    def descend(frames: int) -> None:
        if frames:
            descend(frames - 1)
            return
        try:
            Codec(Task).decode(data)
            outcomes.append("decoded")
        except NestingTooDeep:
            outcomes.append("too_deep")

    descend(sys.getrecursionlimit() - stack_depth() - 40)
    assert outcomes in (["decoded"], ["too_deep"])


@pytest.mark.parametrize("task_id", ["t1", "A-b_9", "x" * MAX_TASK_ID])
def test_good_task_ids_pass(task_id: str) -> None:
    check_task_id(task_id)


BAD_IDS = ["", "a.b.c", "sp ace", "../../x", ">", "*", "a.>", "line\n", "tab\t", "ünï", "x" * (MAX_TASK_ID + 1)]


@pytest.mark.parametrize("task_id", BAD_IDS, ids=lambda v: repr(v) if len(v) < 20 else f"{len(v)}-chars")
def test_bad_task_ids_raise_a_typed_protocol_error(task_id: str) -> None:
    with pytest.raises(InvalidTaskId) as caught:
        check_task_id(task_id)
    assert caught.value.reason == "task_id" and caught.value.task_id == task_id
    assert repr(task_id[:64]) in caught.value.detail and caught.value.max_length == MAX_TASK_ID


# ------------------------------------------------------------------ on the bus


@contextlib.asynccontextmanager
async def gossiping_swarm(url: str, data_dir: Path) -> AsyncIterator[Swarm]:
    """The local swarm with gossip on (every agent keyed and serving its gossip subject)."""
    config = make_config(url, data_dir, extra="[gossip]\ninterval = 30\n")
    ensure_keys(config)
    async with agents_running(config, url) as hosts, connect(config, servers=[url]) as swarm:
        assert all(h.gossip is not None for h in hosts.values())
        yield swarm


class Listener:
    """A raw subscription that collects what arrives, decoded as `Error | AgentStatus`."""

    def __init__(self) -> None:
        self.got: list[Error | AgentStatus] = []

    async def on_msg(self, msg: Msg) -> None:
        self.got.append(ANSWERS.decode(msg.data))

    def errors(self, code: str) -> list[Error]:
        return [e for e in self.got if isinstance(e, Error) and e.code == code]

    def until(self, code: str, n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(self.errors(code)) >= n
        return check


async def listen(bus: Bus, subject: str) -> Listener:
    listener = Listener()
    await bus.nc.subscribe(subject, cb=listener.on_msg)
    await bus.nc.flush()
    return listener


async def ask(bus: Bus, subject: str, data: bytes, *, answers: int) -> list[Error | AgentStatus]:
    """Publish raw bytes with a reply inbox and wait (bounded) for `answers` replies."""
    inbox = bus.nc.new_inbox()
    listener = await listen(bus, inbox)
    await bus.nc.publish(subject, data, reply=inbox)

    async def answered() -> bool:
        return len(listener.got) >= answers

    await eventually(answered, timeout=10, what=f"{answers} replies on {subject}")
    return listener.got


async def counters(swarm: Swarm) -> dict[str, dict[str, int]]:
    status = await swarm.status(timeout=0.5)
    return {a.agent: a.counters for a in status.agents}


async def drained(bus: Bus) -> bool:
    """Nothing pending for the dreamer, nothing left in the task stream."""
    info = await bus.js.consumer_info(bus.subjects.tasks_stream, "dreamer")
    stream = await bus.js.stream_info(bus.subjects.tasks_stream)
    return info.num_pending == 0 and info.num_ack_pending == 0 and stream.state.messages == 0


async def publish_raw_tasks(bus: Bus, payloads: list[bytes], prefix: str) -> None:
    """What a client that skips our checks does: JetStream publishes, with message ids."""
    await asyncio.gather(*(bus.js.publish(bus.subjects.task("plan"), data, headers={"Nats-Msg-Id": f"{prefix}-{i}"})
                           for i, data in enumerate(payloads)))


async def real_task_is_quick(swarm: Swarm) -> None:
    began = time.monotonic()
    result = await swarm.submit(load_task("dns-cutover"), kind="plan", timeout=10)
    assert result.status is ResultStatus.ACCEPTED and time.monotonic() - began < 10


async def test_nesting_bombs_on_every_subject_are_refused_and_the_swarm_keeps_serving(
        nats_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with gossiping_swarm(nats_url, tmp_path / "data") as swarm:
        bus, s = swarm.bus, swarm.bus.subjects
        events = await listen(bus, s.rel("events.error"))
        # the task subject: 300 bombs, more than the dreamer's ack window (256) holds
        await publish_raw_tasks(bus, task_bombs(300), "bomb")
        # the candidate subject every critic serves: each critic answers a typed Error
        cand = Candidate(id="c1", task=task(PLANT), round=1, index=0, steps=("a",), text="a")
        replies = await ask(bus, s.candidate("t1"), planted(cand, arrays(1000)), answers=len(CRITICS))
        assert [r.code for r in replies if isinstance(r, Error)] == ["too_deep"] * len(CRITICS)
        # the dreamer's task queries, every agent's status, every agent's gossip subject
        replies = await ask(bus, s.task_show, with_extra_field(TaskQuery(task_id="t1"), maps(1000)), answers=1)
        assert [r.code for r in replies if isinstance(r, Error)] == ["too_deep"]
        replies = await ask(bus, s.status, with_extra_field(StatusRequest(), arrays(1000)), answers=len(AGENTS))
        assert [r.code for r in replies if isinstance(r, Error)] == ["too_deep"] * len(AGENTS)
        for agent in AGENTS:
            request = with_extra_field(SyncRequest(sender="x", heads={}), arrays(1000))
            replies = await ask(bus, s.gossip(agent), request, answers=1)
            assert [r.code for r in replies if isinstance(r, Error)] == ["too_deep"]

        await real_task_is_quick(swarm)
        await eventually(events.until("too_deep", 300), timeout=10, what="an Error event for each bomb")
        await eventually(lambda: drained(bus), timeout=10, what="every bomb terminated, none pending")
        seen = await counters(swarm)
        assert seen["dreamer"]["error.too_deep"] == 300 + 2  # the tasks, its task query and status
        for critic in CRITICS:
            assert seen[critic]["error.too_deep"] == 2  # the candidate and status
        for agent in AGENTS:
            assert seen[agent]["gossip.refused.request"] == 1
    assert not [r for r in caplog.records if r.exc_info], "a bomb logged a traceback"


async def test_bad_task_ids_published_raw_are_terminated_and_reported(swarm: Swarm) -> None:
    bus = swarm.bus
    events = await listen(bus, bus.subjects.rel("events.error"))
    await publish_raw_tasks(bus, [encode(task(task_id=bad)) for bad in BAD_IDS], "bad-id")

    await eventually(events.until("task_id", len(BAD_IDS)), timeout=10, what="an Error event for each bad id")
    reported = [e.message for e in events.errors("task_id")]
    for bad in BAD_IDS:
        assert sum(repr(bad[:64]) in m for m in reported) >= 1, (bad, reported)
    await eventually(lambda: drained(bus), timeout=10, what="every bad id terminated, none pending")
    assert (await counters(swarm))["dreamer"]["error.task_id"] == len(BAD_IDS)
    await real_task_is_quick(swarm)
    results = await bus.js.stream_info(bus.subjects.results_stream)
    assert results.state.messages == 1  # only the real task's


async def test_wildcard_result_lookups_never_return_another_tasks_result(swarm: Swarm) -> None:
    bus = swarm.bus
    done = await swarm.submit(load_task("dns-cutover"), kind="plan", timeout=30)
    assert (await bus.get_result(done.task_id)) == done
    for pattern in (">", "*", "a.>", f"{done.task_id}.>", ""):
        with pytest.raises(InvalidTaskId):
            await bus.get_result(pattern)
        with pytest.raises(InvalidTaskId):
            await bus.store_result(Result(task_id=pattern, status=ResultStatus.FAILED, agent="x"))
    control = await TaskControl.open(bus)
    for call in (control.pause, control.resume, control.parked, control.pause_requested):
        with pytest.raises(InvalidTaskId):
            await call(">")
    # a result published under one task's subject that names another is not the first's
    forged = Result(task_id=done.task_id, status=ResultStatus.FAILED, agent="x")
    await bus.js.publish(bus.subjects.result("victim"), encode(forged))
    assert await bus.get_result("victim") is None


# ------------------------------------------------------------------ as the authenticated client


@contextlib.asynccontextmanager
async def secured_swarm(tmp_path: Path) -> AsyncIterator[tuple[Swarm, Bus]]:
    """The local swarm on a nats-server that requires each user's NKey and enforces its
    permissions; the test speaks as `_client` with its own seed, and looks at the consumer
    as `_admin`."""
    text = (f'swarm = "hostile"\n[nats]\nurl = "nats://127.0.0.1:1"\n'
            f'nkey_seed_dir = "{tmp_path / "seeds"}"\n{LOCAL_AGENTS}')
    config: SwarmConfig = parse_config(text, source="<test>", data_dir=tmp_path / "data")
    block = authorization_block(config, ensure_users(config))
    async with EmbeddedNats(tmp_path / "nats", authorization=block) as server:
        async with await Bus.connect([server.url], swarm=config.swarm, name="admin", user=ADMIN,
                                     nkeys_seed=seed_path(config, ADMIN)) as admin:
            await admin.ensure_streams()  # as `reverie up` does: only `_admin` may create streams
            await TaskControl.open(admin)
            async with agents_running(config, server.url), connect(config, servers=[server.url]) as swarm:
                assert swarm.bus.authenticated and swarm.bus.user == "_client"
                yield swarm, admin


async def test_the_authenticated_client_cannot_jam_the_dreamer(tmp_path: Path) -> None:
    """The attack of issue 10 as it was made: 300 bombs and every bad id from `_client`."""
    async with secured_swarm(tmp_path) as (swarm, admin):
        bus = swarm.bus
        events = await listen(bus, bus.subjects.rel("events.error"))
        await publish_raw_tasks(bus, task_bombs(300), "bomb")
        await publish_raw_tasks(bus, [encode(task(task_id=bad)) for bad in BAD_IDS], "bad-id")
        replies = await ask(bus, bus.subjects.status, with_extra_field(StatusRequest(), arrays(1000)),
                            answers=len(AGENTS))
        assert [r.code for r in replies if isinstance(r, Error)] == ["too_deep"] * len(AGENTS)
        await real_task_is_quick(swarm)
        await eventually(events.until("too_deep", 300), timeout=10, what="an Error event for each bomb")
        await eventually(events.until("task_id", len(BAD_IDS)), timeout=10, what="an Error event for each bad id")
        await eventually(lambda: drained(admin), timeout=10, what="every bad task terminated, none pending")
        dreamer = (await counters(swarm))["dreamer"]
        assert dreamer["error.too_deep"] == 301 and dreamer["error.task_id"] == len(BAD_IDS)


def test_a_nesting_bomb_inside_a_gossiped_block_is_malformed_not_a_recursion_error() -> None:
    from reverie.runtime.gossip.errors import Malformed
    from reverie.runtime.gossip.feed import decode_block

    for bomb in (b"\x91" * 2000 + b"\xc0", b"\x93\xa1a\xa1b" + b"\x91" * 2000 + b"\xc0"):
        with pytest.raises(Malformed, match="nested"):
            decode_block(bomb)
