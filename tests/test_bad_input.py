"""Malformed bytes, wrong types and oversized messages on every subject an agent listens on."""

from __future__ import annotations

import nats.js.errors
import pytest

from reverie.protocol import (
    AgentStatus,
    Codec,
    Error,
    Task,
    Verdict,
    encode,
)

from .conftest import eventually, load_task

MALFORMED = b"\xc1\xff not msgpack"
WRONG_TYPE = encode(Verdict(candidate_id="x", critic="y", decision="accept"))  # a valid message of the wrong type
OVERSIZED = b"\x00" * (600 * 1024)  # above max_message_bytes (512 KiB), below NATS' 1 MiB
REPLIES: Codec[Error | AgentStatus | Verdict] = Codec(Error | AgentStatus | Verdict)


async def errors_of(swarm, agent: str) -> dict[str, int]:
    status = await swarm.status(timeout=0.5)
    [st] = [a for a in status.agents if a.agent == agent]
    return st.counters


async def still_serving(swarm) -> None:
    result = await swarm.submit(load_task("dns-cutover"), kind="plan", timeout=30)
    assert result.status.value == "accepted"


@pytest.mark.parametrize(("payload", "code"), [
    pytest.param(MALFORMED, "malformed", id="malformed"),
    pytest.param(WRONG_TYPE, "type", id="wrong-type"),
    pytest.param(OVERSIZED, "oversized", id="oversized"),
])
async def test_candidate_subject_replies_typed_error_from_every_critic(swarm, payload: bytes, code: str) -> None:
    bus = swarm.bus
    inbox = bus.nc.new_inbox()
    sub = await bus.nc.subscribe(inbox)
    await bus.nc.publish(bus.subjects.candidate("t1"), payload, reply=inbox)
    replies = [REPLIES.decode((await sub.next_msg(timeout=5)).data) for _ in range(3)]
    assert all(isinstance(r, Error) and r.code == code for r in replies), replies
    for critic in ("rules", "planner", "budget"):
        counters = await errors_of(swarm, critic)
        assert counters.get(f"error.{code}") == 1 and counters["errors"] == 1
    await still_serving(swarm)


async def test_status_subject_replies_typed_error_from_every_agent(swarm) -> None:
    bus = swarm.bus
    inbox = bus.nc.new_inbox()
    sub = await bus.nc.subscribe(inbox)
    for payload in (MALFORMED, WRONG_TYPE, OVERSIZED):
        await bus.nc.publish(bus.subjects.status, payload, reply=inbox)
    codes = sorted([REPLIES.decode((await sub.next_msg(timeout=5)).data).code for _ in range(12)])
    assert codes == ["malformed"] * 4 + ["oversized"] * 4 + ["type"] * 4
    counters = await errors_of(swarm, "dreamer")
    assert counters["errors"] == 3
    await still_serving(swarm)


async def test_messages_without_reply_subject_are_counted_and_dropped(swarm) -> None:
    bus = swarm.bus
    for payload in (MALFORMED, WRONG_TYPE, OVERSIZED):
        await bus.nc.publish(bus.subjects.candidate("t2"), payload)

    async def counted() -> bool:
        return (await errors_of(swarm, "planner")).get("errors") == 3

    await eventually(counted, what="planner to count 3 bad messages")
    await still_serving(swarm)


@pytest.mark.parametrize(("payload", "code"), [
    pytest.param(MALFORMED, "malformed", id="malformed"),
    pytest.param(WRONG_TYPE, "type", id="wrong-type"),
    pytest.param(encode(Task(id="x", kind="plan", input={}, v=99)), "version", id="unknown-version"),
])
async def test_bad_task_bytes_are_counted_terminated_and_reported(swarm, payload: bytes, code: str) -> None:
    bus = swarm.bus
    events = await bus.nc.subscribe(bus.subjects.rel("events.error"))
    await bus.js.publish(bus.subjects.task("plan"), payload)
    event = REPLIES.decode((await events.next_msg(timeout=10)).data)
    assert isinstance(event, Error) and event.code == code

    async def drained() -> bool:
        info = await bus.js.consumer_info(bus.subjects.tasks_stream, "dreamer")
        return info.num_ack_pending == 0 and info.num_pending == 0

    await eventually(drained, what="the bad task to be terminated, not redelivered")
    counters = await errors_of(swarm, "dreamer")
    assert counters.get(f"error.{code}") == 1
    await still_serving(swarm)


async def test_oversized_task_is_refused_by_the_stream(swarm) -> None:
    bus = swarm.bus
    with pytest.raises(nats.js.errors.APIError):
        await bus.js.publish(bus.subjects.task("plan"), OVERSIZED)
    assert (await bus.js.stream_info(bus.subjects.tasks_stream)).state.messages == 0
    await still_serving(swarm)


async def test_invalid_plan_spec_fails_the_task_with_a_reason(swarm) -> None:
    result = await swarm.submit({"start": "a", "goal": "b", "operations": [{"name": 3}]}, kind="plan", timeout=30)
    assert result.status.value == "failed"
    assert "$.operations[0]" in result.reason
    await still_serving(swarm)


async def test_status_request_is_answered_by_every_agent(swarm) -> None:
    status = await swarm.status(timeout=0.5)
    assert sorted(a.agent for a in status.agents) == ["budget", "dreamer", "planner", "rules"]
    assert {a.role for a in status.agents} == {"dreamer", "critic"}
