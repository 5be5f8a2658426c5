"""The agent API: typed handlers, clear registration errors, request/reply on core subjects."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reverie.agents.reasoners.factory import ReasonerConfigError, make_reasoner
from reverie.protocol import (
    Codec,
    Decision,
    Error,
    Result,
    StatusRequest,
    Task,
    Verdict,
    encode,
)
from reverie.runtime import Agent, AgentHost, Context, HandlerSignatureError, handler, serve_agent
from reverie.runtime.bus.bus import Bus
from reverie.runtime.memory import Memory, MemoryError

from .conftest import make_config


def test_handler_type_comes_from_annotation() -> None:
    class A(Agent):
        @handler("things.*", concurrency=4)
        async def on_verdict(self, v: Verdict, ctx: Context) -> None: ...

        @handler("task.x")
        async def on_task(self, t: Task) -> Result | None: ...

    by_name = {h.name: h for h in A.handlers()}
    assert by_name["on_verdict"].message_type is Verdict and by_name["on_verdict"].wants_ctx
    assert by_name["on_task"].durable and not by_name["on_task"].wants_ctx
    assert by_name["on_verdict"].spec.concurrency == 4


@pytest.mark.parametrize(("source", "says"), [
    pytest.param("def h(self, t: Task) -> None: ...", "must be `async def`", id="not-async"),
    pytest.param("async def h(self, t) -> None: ...", "must be annotated with a message type", id="no-annotation"),
    pytest.param("async def h(self, t: dict) -> None: ...", "must be annotated with a message type",
                 id="not-a-message"),
    pytest.param("async def h(self) -> None: ...", "takes (self, msg) or (self, msg, ctx)", id="no-message"),
    pytest.param("async def h(self, t: Verdict) -> None: ...", "annotate 't' as `Task`", id="task-subject-not-task"),
])
def test_wrong_handler_signature_fails_at_registration_and_says_what_to_write(source: str, says: str) -> None:
    namespace: dict[str, object] = {}
    exec(source, {"Task": Task, "Verdict": Verdict}, namespace)
    fn = handler("task.x")(namespace["h"])  # type: ignore[arg-type]
    cls = type("Bad", (Agent,), {"h": fn})
    with pytest.raises(HandlerSignatureError) as info:
        cls.handlers()
    assert says in str(info.value)
    assert "async def h(self, msg: SomeMessage, ctx: Context)" in str(info.value)


class Judge(Agent):
    role = "critic"

    @handler("dream.*.cand")
    async def judge(self, cand: Task) -> Verdict:  # annotated Task to keep the test small
        if cand.kind == "boom":
            raise RuntimeError("boom")
        return Verdict(candidate_id=cand.id, critic=self.ctx.name, decision=Decision.ACCEPT)


async def test_core_handler_replies_and_turns_exceptions_into_typed_errors(nats_url: str, tmp_path: Path) -> None:
    sys.modules[__name__].Judge = Judge  # resolvable as module:Class
    config = make_config(nats_url, tmp_path, agents=f'[[agents]]\nname = "j"\nkind = "{__name__}:Judge"\n')
    async with serve_agent(config, "j", servers=[nats_url]) as host:
        nc = host.bus.nc
        reply = await nc.request("rv.test.dream.t.cand", encode(Task(id="t", kind="ok", input=None)), timeout=5)
        verdict = Codec(Verdict | Error).decode(reply.data)
        assert isinstance(verdict, Verdict) and verdict.critic == "j"
        reply = await nc.request("rv.test.dream.t.cand", encode(Task(id="t", kind="boom", input=None)), timeout=5)
        error = Codec(Verdict | Error).decode(reply.data)
        assert isinstance(error, Error) and error.code == "handler" and "boom" in error.message
        assert host.counters["error.handler"] == 1 and host.counters["handled"] == 1
        reply = await nc.request("rv.test.ctl.status", encode(StatusRequest()), timeout=5)
        assert b"j" in reply.data


class OldReasoner:
    async def propose(self, task, round, k, history):  # type: ignore[no-untyped-def]
        return []


def test_a_reasoner_with_the_wrong_signature_fails_when_built() -> None:
    sys.modules[__name__].OldReasoner = OldReasoner
    with pytest.raises(ReasonerConfigError, match="lessons"):
        make_reasoner(f"{__name__}:OldReasoner", {})
    assert make_reasoner("offline", {"seed": 3}) is not None


class FailsToStart(Agent):
    """Opens its memory in `on_start`, then fails: the host must release what it started."""

    memory: Memory | None = None

    async def on_start(self) -> None:
        self.memory = await self.ctx.memory()
        await self.memory.put("/started", "yes")
        raise RuntimeError("on_start failed after opening memory")

    @handler("things.*")
    async def on_verdict(self, v: Verdict) -> None: ...


async def test_a_start_that_fails_half_way_releases_what_it_started(nats_url: str, tmp_path: Path) -> None:
    sys.modules[__name__].FailsToStart = FailsToStart  # type: ignore[attr-defined]
    config = make_config(nats_url, tmp_path, agents=f'[[agents]]\nname = "f"\nkind = "{__name__}:FailsToStart"\n')
    async with await Bus.connect([nats_url], swarm=config.swarm, name="test.f") as bus:
        host = AgentHost(FailsToStart, bus=bus, config=config, spec=config.agent("f"))
        with pytest.raises(RuntimeError, match="on_start failed"):
            async with host:
                pytest.fail("a host whose agent failed to start is never entered")
        memory = host.agent.memory
        assert memory is not None
        with pytest.raises(MemoryError, match="closed"):  # the host closed the memory it opened
            await memory.get("/started")
    async with await Memory.open(config.data_path / "f", agent="f") as again:
        assert (await again.get("/started")) is not None  # written, committed, released
