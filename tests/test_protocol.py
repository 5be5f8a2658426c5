"""Wire types, codec and subjects."""

from __future__ import annotations

import pytest

import reverie.protocol as protocol
import reverie.runtime as runtime
from reverie.protocol import (
    Codec,
    Decision,
    Error,
    OversizedMessage,
    ProtocolError,
    Reply,
    Subjects,
    Task,
    Verdict,
    encode,
)


def test_roundtrip_and_tagged_union() -> None:
    task = Task(id="t1", kind="plan", input={"start": "a"})
    assert Codec(Task).decode(encode(task)) == task
    replies: Codec[Reply] = Codec(Reply)
    verdict = Verdict(candidate_id="c", critic="rules", decision=Decision.FLAG)
    assert replies.decode(encode(verdict)) == verdict
    assert replies.decode(encode(Error(code="x", message="y"))) == Error(code="x", message="y")


@pytest.mark.parametrize(("data", "reason"), [
    pytest.param(b"\xc1", "malformed", id="malformed"),
    pytest.param(b"", "malformed", id="empty"),
    pytest.param(encode(Error(code="x", message="y")), "type", id="other-type"),
    pytest.param(b"\x81\xa1t\xa4task", "type", id="missing-fields"),
    pytest.param(encode(Task(id="t", kind="plan", input=None, v=3)), "version", id="future-version"),
])
def test_decode_failures_raise_one_typed_error(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        Codec(Task).decode(data)
    assert info.value.reason == reason


def test_oversized_carries_sizes() -> None:
    with pytest.raises(OversizedMessage) as info:
        Codec(Task, max_bytes=1024).decode(b"\x00" * 2000)
    assert (info.value.size, info.value.max_size, info.value.reason) == (2000, 1024, "oversized")


def test_subjects_are_built_from_the_swarm_name() -> None:
    s = Subjects("prod-eu")
    assert s.task("plan") == "rv.prod-eu.task.plan"
    assert s.candidate("t1") == "rv.prod-eu.dream.t1.cand"
    assert s.result("t1") == "rv.prod-eu.result.t1"
    assert s.gossip("a1") == "rv.prod-eu.gossip.a1"
    assert s.status == "rv.prod-eu.ctl.status"
    assert s.agent_event("x") == "rv.prod-eu.events.agent.x"
    assert (s.tasks_stream, s.results_stream) == ("RV_PROD_EU_TASKS", "RV_PROD_EU_RESULTS")
    with pytest.raises(ValueError):
        Subjects("has.dot")


@pytest.mark.parametrize("module", [protocol, runtime], ids=["protocol", "runtime"])
def test_public_surface_matches_all(module: object) -> None:
    exported = set(module.__all__)  # type: ignore[attr-defined]
    assert all(hasattr(module, name) for name in exported)
    public = {n for n in vars(module) if not n.startswith("_")}
    submodules = {n for n in public if type(getattr(module, n)).__name__ == "module"}
    assert public - submodules - {"annotations"} == exported
