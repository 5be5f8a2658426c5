"""What Claude gives back that must never be used, and how its failures are lived through
(issue 9, sections 2-6): a critic that cannot judge says why, truncated and refused answers
are never candidates, one retry budget per call, outages outlived within bounds, fatal errors
fatal, batches that respect the operator. Real HTTP (the fake Messages API, which refuses what
the API refuses), the unpatched SDK, agents on a real NATS server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest

from reverie.agents.claude.client import (
    Claude,
    ClaudeFatal,
    ClaudeOptions,
    ClaudeOutage,
)
from reverie.agents.claude.reasoner import ClaudeReasoner
from reverie.agents.reasoners import RoundState
from reverie.protocol import Decision, ResultStatus, Task
from reverie.runtime import connect
from reverie.runtime.cli.render import format_result

from .conftest import CRITICS, agents_running, load_task, make_config
from .fakes.claude_fixtures import GOOD, agents, candidate, judge_agent, solve
from .fakes.messages_api import Drop, FakeAnthropic, HttpError, Reply

KEY_ENV = "REVERIE_TEST_ANTHROPIC_KEY"
FAST = {"retry-after-ms": "1"}  # the SDK's own retries without its backoff, so tests stay quick


def options(fake: FakeAnthropic, **kw: Any) -> ClaudeOptions:
    return ClaudeOptions(base_url=fake.url, api_key_env=KEY_ENV, **{"outage_backoff": 0.05, **kw})


def plan_task(task_id: str = "t1") -> Task:
    return Task(id=task_id, kind="plan", input=load_task("db-migration"))


# ------------------------------------------------------------------ a critic that cannot judge


async def test_a_critic_that_cannot_judge_shows_why_in_the_result(fake: FakeAnthropic, nats_url: str,
                                                                  tmp_path: Path) -> None:
    text = f"""
[[agents]]
name = "dreamer"
kind = "dreamer"
[agents.options]
candidates_per_round = 2
max_rounds = 1
critics = ["judge", "planner", "budget"]
verdict_timeout = 10.0
[agents.options.reasoner_options]
seed = 7
{CRITICS}""" + judge_agent(fake.url, ["Verify checksums before traffic moves."])
    config = make_config(nats_url, tmp_path / "data", agents=text)
    fake.responder = lambda body: Reply.text("Looks fine to me.")  # answers, but calls no verdict tool
    async with agents_running(config, nats_url), connect(config, servers=[nats_url]) as swarm:
        result = await swarm.submit(load_task("db-migration"), kind="plan", timeout=60)
    assert result.status is ResultStatus.EXHAUSTED
    judged = [j for r in result.trace for j in r.candidates]
    assert judged and all(j.missing == ("judge",) for j in judged)
    assert all([(m.critic, m.code) for m in j.why_missing] == [("judge", "judge_no_call")] for j in judged)
    assert "Looks fine to me." in judged[0].why_missing[0].message
    assert "no reasons given" not in result.reason and "judge gave no verdict (judge_no_call" in format_result(result)
    # what the failed judgements cost is in the task's cost all the same
    assert result.usage_by_agent["judge"].requests == len(fake.message_requests())


# ------------------------------------------------------------------ truncated and refused answers


async def test_a_truncated_candidate_is_never_judged_even_when_what_survived_looks_right(
        fake: FakeAnthropic, claude_config: Any, nats_url: str) -> None:
    cut = json.dumps({"steps": GOOD})[:-1] + ', "rationale": "backup fi'  # the steps survive, the rest is cut
    fake.script(Reply.truncated_tool("propose_candidate", [], cut),
                Reply.tools("propose_candidate", [candidate(GOOD, "backup first, verify before traffic")]))
    result = await solve(claude_config, nats_url)
    assert result.status is ResultStatus.ACCEPTED and result.rounds == 2, result.reason
    [first] = result.trace[0].candidates
    [verdict] = first.verdicts
    assert first.outcome is Decision.REJECT and verdict.reasons[0].code == "truncated"
    assert "max_tokens" in verdict.reasons[0].text
    assert result.accepted is not None and result.accepted.candidate.rationale  # required, never defaulted


async def test_a_refusal_is_recorded_as_one_and_not_asked_again(fake: FakeAnthropic, claude_config: Any,
                                                                nats_url: str) -> None:
    fake.responder = lambda body: Reply.refusal(category="cyber", explanation="could enable cyber harm")
    result = await solve(claude_config, nats_url)
    assert result.status is ResultStatus.FAILED and result.rounds == 1
    assert "refusal" in result.reason and "cyber" in result.reason and "could enable cyber harm" in result.reason
    [only] = result.trace[0].candidates
    assert only.verdicts[0].reasons[0].code == "refusal"
    assert len(fake.message_requests()) == 1  # not re-asked the same way for every remaining round


# ------------------------------------------------------------------ one retry budget per call


@pytest.mark.parametrize("error", [
    pytest.param(HttpError(529, "overloaded_error", "Overloaded", FAST), id="529"),
    pytest.param(HttpError(429, "overloaded_error", "Overloaded", FAST), id="429-overloaded"),
    pytest.param(HttpError(500, "api_error", "Internal server error", FAST), id="500"),
])
async def test_a_persistent_error_makes_at_most_max_retries_plus_one_requests_per_call(
        fake: FakeAnthropic, error: HttpError) -> None:
    fake.responder = lambda body: error
    async with Claude(options(fake, max_retries=2, outage_limit=0.0)) as claude:
        with pytest.raises(ClaudeOutage, match=error.message):
            await claude.create(claude.params(refining=False, messages=[{"role": "user", "content": "hi"}]))
    assert len(fake.message_requests()) == 3


async def test_a_connection_dropped_mid_stream_is_retried_like_any_connection_error(fake: FakeAnthropic) -> None:
    fake.script(Drop(after_blocks=1, reply=Reply.tools("propose_candidate", [candidate(GOOD)] * 2)),
                Reply.tools("propose_candidate", [candidate(GOOD)]))
    reasoner = ClaudeReasoner(options(fake, max_retries=0))
    try:
        out = await asyncio.wait_for(reasoner.propose(plan_task(), 1, 1, []), 30)
    finally:
        await reasoner.close()
    assert out.proposals[0].steps == tuple(GOOD) and len(fake.message_requests()) == 2


@pytest.mark.parametrize("code", ["enforced_spend_limit_reached", "contract_spend_limit_reached"])
async def test_a_spend_limit_429_is_fatal_at_once(fake: FakeAnthropic, code: str) -> None:
    fake.responder = lambda body: HttpError(429, "rate_limit_error", "spend limit of the contract reached",
                                            FAST, details={"error_code": code})
    async with Claude(options(fake, max_retries=4)) as claude:
        with pytest.raises(ClaudeFatal, match=code):
            await claude.create(claude.params(refining=False, messages=[{"role": "user", "content": "hi"}]))
    assert len(fake.message_requests()) == 1


async def test_a_retry_after_past_the_budget_is_not_slept_through(fake: FakeAnthropic) -> None:
    fake.responder = lambda body: HttpError(429, "rate_limit_error", "slow down", {"retry-after": "3600"})
    async with Claude(options(fake, max_retries=4, timeout=5.0)) as claude:
        began = time.monotonic()
        with pytest.raises(ClaudeOutage, match="time budget"):
            await claude.create(claude.params(refining=False, messages=[{"role": "user", "content": "hi"}]),
                                deadline=time.monotonic() + 30)
    assert time.monotonic() - began < 10 and len(fake.message_requests()) == 1


# ------------------------------------------------------------------ outages outlived


async def test_a_task_outlives_an_outage_and_the_request_count_stays_bounded(
        fake: FakeAnthropic, nats_url: str, tmp_path: Path) -> None:
    calls = 0

    def flaky(body: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        if calls <= 8:  # four failed calls of two requests each: the outage
            return HttpError(500, "api_error", "Internal server error", FAST)
        return Reply.tools("propose_candidate", [candidate(GOOD)])

    fake.responder = flaky
    config = make_config(nats_url, tmp_path / "data", agents=agents(
        fake.url, extra="max_retries = 1\noutage_max_delay = 0.4"))
    result = await solve(config, nats_url)
    assert result.status is ResultStatus.ACCEPTED and result.rounds == 1, result.reason
    assert len(fake.message_requests()) == 9  # every call: max_retries + 1 requests, no retry on top


async def test_an_outage_past_outage_limit_fails_the_task_with_the_apis_last_message(
        fake: FakeAnthropic, nats_url: str, tmp_path: Path) -> None:
    fake.responder = lambda body: HttpError(500, "api_error", "the API is down for maintenance", FAST)
    config = make_config(nats_url, tmp_path / "data", agents=agents(
        fake.url, extra="max_retries = 1\noutage_max_delay = 0.2\noutage_limit = 1.0"))
    result = await solve(config, nats_url)
    assert result.status is ResultStatus.FAILED and "the API is down for maintenance" in result.reason
    assert "outage_limit" in result.reason and len(fake.message_requests()) <= 2 * 8


# ------------------------------------------------------------------ batches respect the operator


async def batched(fake: FakeAnthropic, task: Task, **kw: Any) -> tuple[Any, list[Any]]:
    reasoner = ClaudeReasoner(options(fake, mode="batch", batch_poll=0.05, **kw))
    saved: list[Any] = []

    async def save(pending: dict[str, Any] | None) -> None:
        saved.append(pending)

    try:
        return await reasoner.propose(task, 1, 1, [], state=RoundState(None, save)), saved
    finally:
        await reasoner.close()


async def test_an_invalid_batch_entry_fails_the_task_and_is_not_sent_again(fake: FakeAnthropic) -> None:
    fake.script(HttpError(400, "invalid_request_error", "messages: roles must alternate"))
    with pytest.raises(ClaudeFatal, match="must be fixed"):
        await asyncio.wait_for(batched(fake, plan_task()), 30)
    assert len(fake.batch_creates()) == 1


async def test_an_entry_the_operator_cancelled_is_not_sent_again(fake: FakeAnthropic) -> None:
    fake.batch_delay = None  # runs until someone ends it

    async def operator() -> None:
        assert await asyncio.to_thread(fake.wait_until, lambda: bool(fake.batches), 30)
        client = anthropic.AsyncAnthropic(api_key="sk-ant-test-key", base_url=fake.url)
        await client.messages.batches.cancel(next(iter(fake.batches)))
        await client.close()

    cancelling = asyncio.create_task(operator())
    with pytest.raises(ClaudeFatal, match="cancelled by the operator"):
        await asyncio.wait_for(batched(fake, plan_task()), 30)
    await cancelling
    assert len(fake.batch_creates()) == 1


async def test_a_round_that_gives_up_on_its_batch_cancels_it(fake: FakeAnthropic) -> None:
    fake.batch_delay = None
    propose = asyncio.create_task(batched(fake, plan_task()))
    # the round holds the batch id once it polls the batch
    assert await asyncio.to_thread(fake.wait_until, lambda: any(
        r.method == "GET" and r.path.startswith("/v1/messages/batches/") for r in fake.requests), 30)
    propose.cancel()  # the task's time budget ran out (the dreamer's wait_for), or the agent stops
    with pytest.raises(asyncio.CancelledError):
        await propose
    [batch_id] = fake.batches
    assert fake.cancels == [batch_id] and fake.batches[batch_id].processing_status in ("canceling", "ended")
