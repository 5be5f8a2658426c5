"""Claude behind the dreamer and the critics, against a fake Messages API on loopback (a real
HTTP server) with the real `AsyncAnthropic` client, agents on a real NATS server."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from reverie.agents.claude.client import (
    DEFAULT_PRICES,
    ClaudeFatal,
    ClaudeOptions,
    cost_of,
)
from reverie.agents.claude.consolidator import ClaudeConsolidator
from reverie.agents.claude.reasoner import ClaudeReasoner
from reverie.agents.reasoners import RoundState
from reverie.protocol import Decision, Reason, Result, ResultStatus, Task
from reverie.runtime import Supervisor, SwarmConfig, connect, load_config
from reverie.runtime.memory import Lesson, MemoryStore
from reverie.runtime.memory import dreams as consolidation

from .conftest import CRITICS, agents_running, eventually, load_task, make_config, run_cli
from .fakes.claude_fixtures import GOOD, agents, candidate, judge_agent, solve
from .fakes.messages_api import (
    Expire,
    FakeAnthropic,
    Hang,
    HttpError,
    Reply,
    StreamError,
)

DANGEROUS = ["migrate_in_place", "direct_cutover", "archive_old_tables"]


def _strip(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in b.items() if k != "cache_control"} for b in blocks]


async def test_tool_candidates_are_parsed_off_schema_ones_rejected_and_usage_is_what_the_api_said(
        fake: FakeAnthropic, claude_config: SwarmConfig, nats_url: str) -> None:
    fake.script(
        Reply.tools("propose_candidate", [candidate(DANGEROUS, "fast"), {"steps": "backup", "rationale": 3}]),
        Reply.tools("propose_candidate", [candidate(GOOD, "backup first, verify before traffic")]))
    result = await solve(claude_config, nats_url)

    assert result.status is ResultStatus.ACCEPTED and result.rounds == 2, result.reason
    assert result.answer["steps"] == GOOD and result.answer["duration"] == 42
    first = result.trace[0].candidates
    assert first[0].outcome is not Decision.ACCEPT and first[0].candidate.steps == tuple(DANGEROUS)
    [off] = first[1].verdicts
    assert first[1].outcome is Decision.REJECT and off.critic == "dreamer.reasoner"
    assert off.reasons[0].code == "off_schema" and "schema" in off.reasons[0].text

    # cache_control on the stable prefix; round 2 repeats round 1's prefix byte for byte
    r1, r2 = (r.body for r in fake.message_requests())
    assert r1["system"][0]["cache_control"] == {"type": "ephemeral"} and r1["tools"] == r2["tools"]
    assert r1["system"] == r2["system"] and r1["messages"][0]["content"][1]["cache_control"]
    c1, c2 = r1["messages"][0]["content"], r2["messages"][0]["content"]
    assert c2[:len(c1) - 1] == c1[:-1] and "Round 1:" in c2[2]["text"] and "off_schema" in c2[2]["text"]
    assert r1["output_config"] == {"effort": "high"} and r2["output_config"] == {"effort": "low"}
    assert "temperature" not in r1 and r1["thinking"] == {"type": "between_tools"} and r1["stream"] is True
    assert fake.usage_log[1]["cache_read_input_tokens"] == fake.usage_log[0]["cache_creation_input_tokens"] > 0

    # usage and cost: the sums of what the fake server returned, priced by the table
    totals = fake.usage_totals()
    assert result.usage is not None and result.usage.requests == 2
    for name, value in totals.items():
        assert getattr(result.usage, name) == value, name
    for rnd, logged in zip(result.trace, fake.usage_log, strict=False):
        assert rnd.usage is not None and rnd.usage.cache_read_input_tokens == logged["cache_read_input_tokens"]
    price = DEFAULT_PRICES["claude-sonnet-5-5"]
    expected = sum(cost_of(msgspec.convert(u, _Tokens), price, batched=False) or 0 for u in fake.usage_log)
    assert result.usage.cost_usd == pytest.approx(expected) and expected > 0


class _Tokens(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


async def test_claude_reads_and_writes_the_dreamers_memory_through_the_memory_tool(
        fake: FakeAnthropic, nats_url: str, tmp_path: Path) -> None:
    config = make_config(nats_url, tmp_path / "data", agents=agents(fake.url, extra="memory_tool = true"))
    memory_call = [{"type": "tool_use", "name": "memory", "input": {  # a name of the runtime's: no collision
                        "command": "create", "path": "/memories/tasks/db.md", "file_text": "back up first\n"}},
                   {"type": "tool_use", "name": "memory", "input": {"command": "view", "path": "/etc/passwd"}}]
    fake.script(Reply(memory_call, "tool_use"), Reply.tools("propose_candidate", [candidate(GOOD)]))
    async with agents_running(config, nats_url) as hosts, connect(config, servers=[nats_url]) as swarm:
        result = await swarm.submit(load_task("db-migration"), kind="plan", timeout=60)
        note = await hosts["dreamer"].agent.memory.get("/claude/tasks/db.md")
    assert result.status is ResultStatus.ACCEPTED and result.rounds == 1, result.reason
    assert note is not None and note.content == b"back up first\n" and note.author == "claude:claude-sonnet-5-5"
    first, second = (r.body for r in fake.message_requests())
    assert {"type": "memory_20250818", "name": "memory"} in first["tools"]
    created, refused = second["messages"][-1]["content"]
    assert created["type"] == "tool_result" and "created" in created["content"].lower()
    assert refused["content"].startswith("Error") and "/memories" in refused["content"]
    assert second["messages"][:1] == first["messages"]  # the round's cached prompt, then the tool turns
    assert result.usage is not None and result.usage.requests == 2
    assert result.usage.output_tokens == fake.usage_totals()["output_tokens"]


async def test_cancelling_a_round_cancels_its_request_and_frees_its_slot(fake: FakeAnthropic) -> None:
    reasoner = ClaudeReasoner(ClaudeOptions(base_url=fake.url, api_key_env="REVERIE_TEST_ANTHROPIC_KEY",
                                            concurrency=1, max_retries=0))
    task = Task(id="c1", kind="plan", input=load_task("db-migration"))
    fake.script(Hang(60), Reply.tools("propose_candidate", [candidate(GOOD)]))
    try:
        hung = asyncio.create_task(reasoner.propose(task, 1, 1, []))
        await eventually(lambda: _async(len(fake.message_requests()) == 1), timeout=10, what="the request")
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(hung, 5)  # not the 60 s the server would take
        # the one concurrency slot is free again: the next round goes through at once
        out = await asyncio.wait_for(reasoner.propose(task, 1, 1, []), 10)
        assert out.proposals[0].steps == tuple(GOOD)
    finally:
        await reasoner.close()


async def test_an_expired_batch_entry_is_sent_again_in_a_new_batch(fake: FakeAnthropic) -> None:
    reasoner = ClaudeReasoner(ClaudeOptions(base_url=fake.url, api_key_env="REVERIE_TEST_ANTHROPIC_KEY",
                                            mode="batch", batch_poll=0.05))
    saved: list[dict[str, Any] | None] = []

    async def save(pending: dict[str, Any] | None) -> None:
        saved.append(pending)

    task = Task(id="x" * 60, kind="plan", input=load_task("db-migration"))  # a custom_id allows 64 chars
    fake.script(Expire(), Reply.tools("propose_candidate", [candidate(GOOD)]))
    try:
        out = await asyncio.wait_for(reasoner.propose(task, 2, 1, [], state=RoundState(None, save)), 30)
    finally:
        await reasoner.close()
    assert out.proposals[0].steps == tuple(GOOD) and out.usage is not None and out.usage.batched == 1
    creates = [r.body["requests"][0]["custom_id"] for r in fake.batch_creates()]
    assert len(creates) == 2 and creates[0] != creates[1] and all(len(c) <= 64 for c in creates)
    assert [(p["attempt"], p["custom_id"]) for p in saved if p] == [(1, creates[0]), (2, creates[1])]


async def _async(value: bool) -> bool:
    return value


async def test_429_529_and_an_overloaded_stream_are_retried_and_the_task_succeeds(
        fake: FakeAnthropic, claude_config: SwarmConfig, nats_url: str) -> None:
    fake.script(HttpError(429, "rate_limit_error", "slow down", {"retry-after": "1"}),
                HttpError(529, "overloaded_error", "Overloaded"),
                StreamError("overloaded_error", "Overloaded", after_blocks=0,
                            reply=Reply.tools("propose_candidate", [candidate(GOOD)])),
                Reply.tools("propose_candidate", [candidate(GOOD)]))
    result = await solve(claude_config, nats_url)
    assert result.status is ResultStatus.ACCEPTED and result.rounds == 1
    assert len(fake.message_requests()) == 4 and fake.remaining() == 0
    assert result.usage is not None and result.usage.requests == 1  # only the answer that arrived counts


@pytest.mark.parametrize("error, says", [
    (HttpError(400, "invalid_request_error", "You have reached your specified API usage limits. "
                                             "You will regain access on 2026-12-01."), "usage limits"),
    (HttpError(429, "rate_limit_error", "monthly spend cap reached",
               details={"error_code": "enforced_spend_limit_reached"}), "spend limit"),
    (HttpError(401, "authentication_error", "invalid x-api-key"), "REVERIE_TEST_ANTHROPIC_KEY"),
])
async def test_spend_limit_and_bad_key_fail_the_task_at_once_with_their_message(
        fake: FakeAnthropic, claude_config: SwarmConfig, nats_url: str, error: HttpError, says: str) -> None:
    fake.script(error, Reply.tools("propose_candidate", [candidate(GOOD)]))
    result = await solve(claude_config, nats_url)
    assert result.status is ResultStatus.FAILED and says in result.reason, result.reason
    assert len(fake.message_requests()) == 1 and fake.remaining() == 1  # no retry, no second round


async def test_a_dreamer_killed_during_its_batch_resumes_it_and_pays_once(
        fake: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.batch_delay = None  # running until the test ends it
    path = tmp_path / "swarm.toml"
    path.write_text('swarm = "batch"\ndata_dir = "data"\nrestart_backoff = 0.2\n'
                    + agents(fake.url, mode="batch", k=1))
    config = load_config(path)
    fake.script(Reply.tools("propose_candidate", [candidate(GOOD)]))
    with await asyncio.to_thread(open, tmp_path / "swarm.log", "w") as log:
        async with Supervisor(config, out=log), connect(config) as swarm:
            waiting = asyncio.create_task(swarm.submit(load_task("db-migration"), kind="plan", task_id="b1",
                                                       timeout=90))

            async def polled() -> str | None:  # the dreamer polls only after the batch id is checkpointed
                creates = fake.batch_creates()
                polls = [r for r in fake.requests if r.method == "GET" and "/batches/" in r.path]
                return creates[0].path if creates and polls else None

            await eventually(polled, timeout=30, what="the dreamer to create and poll a batch")
            [batch_id] = list(fake.batches)
            status = await swarm.status()
            [old] = [a.pid for a in status.agents if a.agent == "dreamer"]
            os.kill(old, signal.SIGKILL)
            seen = len(fake.requests)

            async def polled_again() -> bool:
                return any(r.method == "GET" and batch_id in r.path for r in fake.requests[seen:])

            await eventually(polled_again, timeout=30, what="the restarted dreamer to poll the same batch")
            fake.end_batch(batch_id)
            result = await asyncio.wait_for(waiting, 60)
    assert result.status is ResultStatus.ACCEPTED and result.answer["steps"] == GOOD, result.reason
    assert len(fake.batch_creates()) == 1 and not fake.message_requests()
    assert result.resumes >= 1
    assert result.usage is not None and result.usage.batched == 1 == result.usage.requests
    price = DEFAULT_PRICES["claude-sonnet-5-5"]
    [logged] = fake.usage_log
    assert logged["batch"] and result.usage.cost_usd == pytest.approx(
        cost_of(msgspec.convert(logged, _Tokens), price, batched=True))
    assert result.usage.cost_usd == pytest.approx(cost_of(msgspec.convert(logged, _Tokens), price, batched=False) / 2)


async def test_the_llm_critic_judges_by_its_constitution_and_a_harmful_flag_quarantines(
        fake: FakeAnthropic, nats_url: str, tmp_path: Path) -> None:
    """The rule critics answer in microseconds, the LLM critic in milliseconds; `rules` is not
    awaited at all: its fast answer must not end the wait for `judge`'s."""
    text = f"""
[[agents]]
name = "dreamer"
kind = "dreamer"
[agents.options]
candidates_per_round = 3
max_rounds = 5
critics = ["judge", "planner", "budget"]
[agents.options.reasoner_options]
seed = 7
{CRITICS}""" + judge_agent(fake.url, ["Nothing runs a dangerous in-place migration.",
                                         "Verify checksums before traffic moves."])
    config = make_config(nats_url, tmp_path / "data", agents=text)

    def judge(body: dict[str, Any]) -> Reply:
        [cand] = [line for line in body["messages"][0]["content"][-1]["text"].splitlines()
                  if line.startswith("steps: ")]  # not the rationale, which names what it avoids
        if "migrate_in_place" in cand:
            return Reply.tool("verdict", {"decision": "harmful", "reasons": [
                {"rule": "1", "text": "in-place migration", "steps": ["migrate_in_place"]}]})
        if "verify_checksums" not in cand:
            return Reply.tool("verdict", {"decision": "reject", "reasons": [{"rule": "2", "text": "no checksums"}]})
        return Reply.tool("verdict", {"decision": "accept", "score": 0.9, "reasons": []})

    fake.responder = judge
    async with agents_running(config, nats_url), connect(config, servers=[nats_url]) as swarm:
        result = await asyncio.wait_for(swarm.submit(load_task("db-migration"), kind="plan"), 60)
    assert result.status is ResultStatus.ACCEPTED and "verify_checksums" in result.answer["steps"], _show(result)
    judged = [j for r in result.trace for j in r.candidates]
    flagged = [j for j in judged if j.outcome is Decision.FLAG]
    assert flagged and all(j.candidate.steps == () for j in flagged)  # quarantined: the path never leaves
    assert all(any(v.critic == "judge" for v in j.verdicts) for j in judged)
    assert {(r.code, r.text, r.ops) for j in flagged for v in j.verdicts if v.critic == "judge"
            for r in v.reasons} == {("harmful", "rule 1: in-place migration", ("migrate_in_place",))}
    bodies = [r.body for r in fake.message_requests()]
    assert all("2. Verify checksums" in b["system"][0]["text"] and b["system"][0]["cache_control"] for b in bodies)
    # claude-sonnet-5-5 refuses a forced tool choice: asked with `auto` and in words
    assert all("tool_choice" not in b
               and "call the `verdict` tool exactly once" in b["messages"][0]["content"][-1]["text"] for b in bodies)
    assert sum(u["cache_read_input_tokens"] for u in fake.usage_log) > 0  # one cached prefix per task
    # the critic's spend is part of what the task cost, by agent
    assert result.usage_by_agent["judge"].requests == len(bodies) and "dreamer" not in result.usage_by_agent
    assert result.usage is not None and result.usage.requests == len(bodies)


async def test_claude_on_both_sides_the_dreamer_aims_at_the_llm_critics_constitution(
        fake: FakeAnthropic, nats_url: str, tmp_path: Path) -> None:
    rules = ["Back up before any migration.", "Verify checksums before traffic moves."]
    config = make_config(nats_url, tmp_path / "data", agents=agents(fake.url) + judge_agent(fake.url, rules))

    def answer(body: dict[str, Any]) -> Reply:
        if body["tools"][0]["name"] == "verdict":
            return Reply.tool("verdict", {"decision": "accept", "reasons": []})
        return Reply.tools("propose_candidate", [candidate(GOOD)])

    fake.responder = answer
    async with agents_running(config, nats_url), connect(config, servers=[nats_url]) as swarm:
        result = await swarm.submit(load_task("db-migration"), kind="plan", timeout=60)
    assert result.status is ResultStatus.ACCEPTED, result.reason
    assert {v.critic for v in result.accepted.verdicts} == {"rules", "planner", "budget", "judge"}  # type: ignore[union-attr]
    [dreamer] = [r.body for r in fake.message_requests() if r.body["tools"][0]["name"] == "propose_candidate"]
    system = dreamer["system"][0]
    assert "1. Back up before any migration.\n2. Verify checksums before traffic moves." in system["text"]
    assert system["cache_control"] == {"type": "ephemeral"}  # the constitution is part of the cached prefix


async def test_a_claude_consolidation_dream_merges_what_claude_says_and_records_usage(
        fake: FakeAnthropic, tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "mem", agent="dreamer") as store:
        batch = store.batch()
        for i, text in enumerate(["backup first", "take a backup before migrating", "verify checksums"]):
            batch.lesson(Lesson(id=f"l{i}", topic="plan", features=("op:backup",),
                                reason=Reason(code="missing_required", text=text, ops=("backup",))))
        store.commit(batch)
        fake.script(Reply.tool("consolidation_plan", {
            "merges": [{"lessons": ["l0", "l1"], "text": "always back up before migrating"}],
            "summaries": {"plan": "back up, migrate, verify checksums"}}))
        options = ClaudeOptions(base_url=fake.url, api_key_env="REVERIE_TEST_ANTHROPIC_KEY")
        record = consolidation.dream(store, in_place=True, instructions="Merge only exact duplicates.",
                                     consolidator=ClaudeConsolidator(options))
        lessons = {x.reason.text: x for x in store.lessons()}
        assert record.status is consolidation.DreamStatus.COMPLETED and record.consolidator == "claude"
        assert set(lessons) == {"always back up before migrating", "verify checksums"}
        assert lessons["always back up before migrating"].weight == 2
        summary = store.get("/summaries/plan")
        assert summary is not None and summary.content == b"back up, migrate, verify checksums"
        [request] = fake.message_requests()
        assert "Merge only exact duplicates." in request.body["system"][0]["text"]
        totals = fake.usage_totals()
        assert record.usage.output_tokens == totals["output_tokens"] > 0
        assert record.usage.cost_usd is not None and record.usage.cost_usd > 0  # the dream's cost, not only tokens
        assert record.usage.input_tokens == (totals["input_tokens"] + totals["cache_creation_input_tokens"]
                                             + totals["cache_read_input_tokens"])


def test_a_consolidation_dream_at_the_spend_cap_fails_at_once_and_changes_nothing(
        fake: FakeAnthropic, tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "mem", agent="dreamer") as store:
        batch = store.batch()
        for i in range(2):
            batch.lesson(Lesson(id=f"l{i}", topic="plan", features=("op:backup",),
                                reason=Reason(code="missing_required", text="backup first", ops=("backup",))))
        store.commit(batch)
        before = store.lessons()
        fake.script(HttpError(429, "rate_limit_error", "monthly spend cap reached",
                              details={"error_code": "enforced_spend_limit_reached"}))
        options = ClaudeOptions(base_url=fake.url, api_key_env="REVERIE_TEST_ANTHROPIC_KEY")
        with pytest.raises(ClaudeFatal, match="spend limit"):
            consolidation.dream(store, in_place=True, consolidator=ClaudeConsolidator(options))
        assert len(fake.message_requests()) == 1  # the SDK's retries stopped by the guard
        assert store.lessons() == before


def test_a_missing_key_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:

    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    proc = run_cli("up", str(Path(__file__).resolve().parent.parent / "deploy" / "anthropic.toml"),
                   "--data-dir", str(tmp_path / "d"), env=env)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ANTHROPIC_API_KEY is not set" in lines[0], proc.stderr


def _show(result: Result) -> str:
    return "\n".join(f"r{r.round} {j.outcome.value} {' -> '.join(j.candidate.steps)}: "
                     + "; ".join(f"{v.critic}={v.decision.value} {[x.text for x in v.reasons]}" for v in j.verdicts)
                     + (f" missing {j.missing}" if j.missing else "")
                     for r in result.trace for j in r.candidates) + f"\n{result.reason}"
