"""The fake Anthropic server, exercised with the real, unpatched `anthropic.AsyncAnthropic` client."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from .fakes.messages_api import (
    FORCED_TOOL,
    FORCED_WITH_THINKING,
    MODEL_RULES,
    NO_EFFORT,
    PREFILL,
    SAMPLING_PAIR,
    Expire,
    FakeAnthropic,
    Hang,
    HttpError,
    Reply,
    StreamError,
)

ROOT = Path(__file__).resolve().parent.parent
MODEL = "claude-test-1"  # a made-up model: the mechanics tests run with strict_models=False
USER: list[Any] = [{"role": "user", "content": "propose something"}]


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """For the tests of the fake's mechanics (streaming, caching, errors, batches): a made-up
    model, so no per-model rule and no per-model cache minimum. The rule tests use `strict`."""
    with FakeAnthropic(strict_models=False) as fake:
        yield fake


@pytest.fixture
async def client(fake_anthropic: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="test-key", max_retries=0) as c:
        yield c


def _mixed_reply() -> Reply:
    return Reply([
        {"type": "thinking", "thinking": "Let me weigh three options before answering. " * 3, "signature": "sig-1"},
        {"type": "text", "text": "Here are two candidates, with reasons that take a while to state."},
        {"type": "tool_use", "id": "toolu_fixed", "name": "propose", "input": {"idea": "a" * 50, "score": 0.5}},
        {"type": "tool_use", "name": "propose", "input": {"idea": "b", "tags": ["x", {"y": [1, 2]}]}},
    ], stop_reason="tool_use")


async def test_stream_and_non_stream_parse_to_the_same_message(
        fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake_anthropic.script(_mixed_reply(), _mixed_reply())
    plain = await client.messages.create(model=MODEL, max_tokens=1000, messages=USER)
    async with client.messages.stream(model=MODEL, max_tokens=1000, messages=USER) as stream:
        streamed = await stream.get_final_message()

    def comparable(m: anthropic.types.Message) -> dict[str, Any]:
        d = m.model_dump(exclude={"id"})
        d["content"][3].pop("id")  # filled in by the fake, fresh per reply
        return d

    assert comparable(streamed) == comparable(plain)
    assert plain.content[2].type == "tool_use" and plain.content[2].id == "toolu_fixed"
    assert plain.content[3].type == "tool_use" and plain.content[3].id.startswith("toolu_")
    assert plain.content[3].input == {"idea": "b", "tags": ["x", {"y": [1, 2]}]}
    assert plain.stop_reason == "tool_use" and plain.model == MODEL and plain.id.startswith("msg_")
    assert plain.usage.output_tokens > 1 and plain.usage.service_tier == "standard"
    assert [u["output_tokens"] for u in fake_anthropic.usage_log] == [plain.usage.output_tokens] * 2
    assert [r.body.get("stream", False) for r in fake_anthropic.message_requests()] == [False, True]


async def test_raw_event_sequence(fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake_anthropic.script(Reply.tool("propose", {"idea": "x" * 40}))
    raw = await client.messages.create(model=MODEL, max_tokens=100, messages=USER, stream=True)
    kinds = [e.type async for e in raw]
    deltas = kinds.count("content_block_delta")
    assert kinds == ["message_start", "content_block_start", *["content_block_delta"] * deltas,
                     "content_block_stop", "message_delta", "message_stop"]
    assert deltas > 1  # the tool input arrives as several partial_json chunks


def _tokens(block: dict[str, Any]) -> int:
    """The fake's rule: ceil(len(canonical JSON of the block) / 4)."""
    return -(-len(json.dumps(block, sort_keys=True, separators=(",", ":"))) // 4)


SYSTEM = "You are a careful critic. " * 40
SYSTEM_TOKENS = _tokens({"type": "text", "text": SYSTEM})


def _cached_request(question: str, *, system_text: str = SYSTEM) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 100,
            "system": [{"type": "text", "text": system_text, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": question}]}


async def test_cache_write_then_read(fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake_anthropic.script(Reply.text("one"), Reply.text("two"))
    first = (await client.messages.create(**_cached_request("first question"))).usage
    second = (await client.messages.create(**_cached_request("a different, longer question"))).usage
    assert first.cache_creation_input_tokens and first.cache_creation_input_tokens > 0
    assert first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert first.cache_creation_input_tokens == SYSTEM_TOKENS
    assert first.cache_creation is not None and first.cache_creation.ephemeral_5m_input_tokens == SYSTEM_TOKENS
    assert second.input_tokens == _tokens({"type": "text", "text": "a different, longer question"})
    assert fake_anthropic.usage_totals()["cache_read_input_tokens"] == second.cache_read_input_tokens


async def test_cache_ttl_minimum_and_limits(fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    now = [1000.0]
    fake_anthropic.clock = lambda: now[0]
    fake_anthropic.responder = lambda body: Reply.text("ok")

    async def usage(**kw: Any) -> anthropic.types.Usage:
        msg: anthropic.types.Message = await client.messages.create(**kw)
        return msg.usage

    await usage(**_cached_request("q"))
    now[0] += 299  # a read refreshes the 5-minute TTL ...
    assert (await usage(**_cached_request("q"))).cache_read_input_tokens == SYSTEM_TOKENS
    now[0] += 299
    assert (await usage(**_cached_request("q"))).cache_read_input_tokens == SYSTEM_TOKENS
    now[0] += 301  # ... and without one it expires
    assert (await usage(**_cached_request("q"))).cache_read_input_tokens == 0

    fake_anthropic.min_cache_tokens = 1024  # below the minimum: neither written nor read
    small = _cached_request("q", system_text="short and different")
    assert (await usage(**small)).cache_creation_input_tokens == 0
    assert (await usage(**small)).cache_read_input_tokens == 0
    fake_anthropic.min_cache_tokens = 0

    one_hour = _cached_request("q", system_text="other")
    one_hour["system"][0]["cache_control"]["ttl"] = "1h"
    u = await usage(**one_hour)
    assert u.cache_creation is not None and u.cache_creation.ephemeral_1h_input_tokens == u.cache_creation_input_tokens

    too_many = _cached_request("q")
    too_many["system"] = [{"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        await client.messages.create(**too_many)


async def test_automatic_caching_moves_forward_over_a_conversation(
        fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake_anthropic.responder = lambda body: Reply.text("an answer of some length")
    history: list[Any] = []
    reads: list[int] = []
    for turn in range(4):
        history.append({"role": "user", "content": f"turn {turn}: " + "context " * 30})
        msg = await client.messages.create(model=MODEL, max_tokens=100, messages=history,
                                           cache_control={"type": "ephemeral"})
        history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]})
        reads.append(msg.usage.cache_read_input_tokens or 0)
        assert msg.usage.input_tokens == 0  # everything up to the last block is read or written
    assert reads[0] == 0 and all(b > a > 0 for a, b in itertools.pairwise(reads[1:]))


async def test_retry_after_then_success(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(HttpError(429, "rate_limit_error", "slow down", {"retry-after": "1"}), Reply.text("ok"))
    async with anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="k") as c:  # default retries (2)
        msg = await c.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert msg.content[0].type == "text" and msg.content[0].text == "ok"
    first, second = fake_anthropic.message_requests()
    assert second.time - first.time >= 0.9
    assert second.headers["x-stainless-retry-count"] == "1"
    assert len(fake_anthropic.usage_log) == 1


async def test_status_errors(fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake_anthropic.script(
        HttpError(401, "authentication_error", "invalid x-api-key"),
        HttpError(529, "overloaded_error", "Overloaded"),
        StreamError(),  # not streaming: a 529
        HttpError(400, "invalid_request_error", "You have reached your specified API usage limits. ..."),
        HttpError(429, "rate_limit_error", "monthly cap", details={"error_code": "enforced_spend_limit_reached"}),
    )
    with pytest.raises(anthropic.AuthenticationError) as auth:
        await client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert auth.value.status_code == 401 and auth.value.type == "authentication_error"
    assert auth.value.request_id and auth.value.request_id.startswith("req_")
    for _ in range(2):
        with pytest.raises(anthropic.OverloadedError) as over:  # an InternalServerError, an APIStatusError
            await client.messages.create(model=MODEL, max_tokens=10, messages=USER)
        assert over.value.status_code == 529 and over.value.type == "overloaded_error"
    with pytest.raises(anthropic.BadRequestError, match="usage limits"):
        await client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    with pytest.raises(anthropic.EnforcedSpendLimitReachedError) as cap:  # a RateLimitError
        await client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert cap.value.error_code == "enforced_spend_limit_reached" and cap.value.status_code == 429


async def test_api_key_and_unscripted(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.api_key = "right"
    async with anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="wrong") as c:
        with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
            await c.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert fake_anthropic.remaining() == 0 and len(fake_anthropic.requests) == 1  # 401s are not retried
    async with anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="right") as c:
        with pytest.raises(anthropic.InternalServerError, match="unscripted request"):
            await c.messages.create(model=MODEL, max_tokens=10, messages=USER)
        with pytest.raises(anthropic.NotFoundError):
            await c.models.list()
    assert len(fake_anthropic.message_requests()) == 2  # x-should-retry: false, so no retries of the 500
    # anthropic 2.x sends the key as `Authorization: Bearer`; the fake also accepts `x-api-key`
    assert fake_anthropic.requests[-1].headers["authorization"] == "Bearer right"
    request = urllib.request.Request(f"{fake_anthropic.url}/v1/messages/count_tokens", method="POST",
                                     data=json.dumps({"model": MODEL, "messages": USER}).encode(),
                                     headers={"x-api-key": "right", "content-type": "application/json"})
    with await asyncio.to_thread(urllib.request.urlopen, request, timeout=30) as response:
        assert json.load(response) == {"input_tokens": _tokens({"type": "text", "text": "propose something"})}


async def test_overloaded_in_stream(fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake_anthropic.script(StreamError(after_blocks=1, reply=Reply([{"type": "text", "text": "first block"},
                                                                   {"type": "text", "text": "second block"}])))
    seen: list[str] = []
    # The SDK raises the *base* `anthropic.APIStatusError` for an `event: error` in a stream: the HTTP status
    # was 200, so no subclass matches (not OverloadedError, not InternalServerError). `.status_code` is 200,
    # `.type` is the error's type, `.body` the event's JSON. The SDK does not retry it.
    with pytest.raises(anthropic.APIStatusError) as err:
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
            async for text in stream.text_stream:
                seen.append(text)
    assert type(err.value) is anthropic.APIStatusError
    assert err.value.status_code == 200 and err.value.type == "overloaded_error"
    assert isinstance(err.value.body, dict) and err.value.body["error"]["type"] == "overloaded_error"
    assert "".join(seen).startswith("first block") and len(fake_anthropic.message_requests()) == 1
    assert fake_anthropic.usage_log == []  # not a successful reply


def _batch_requests(n: int) -> list[Any]:
    return [{"custom_id": f"c{i}", "params": {"model": MODEL, "max_tokens": 10,
                                              "messages": [{"role": "user", "content": f"q{i}"}]}} for i in range(n)]


async def test_batch_ends_on_retrieve(fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake_anthropic.script(Reply.text("answer 0"), Expire(), HttpError(400, "invalid_request_error", "bad"))
    created = await client.messages.batches.create(requests=_batch_requests(3))
    assert created.id.startswith("msgbatch_") and created.processing_status == "in_progress"
    assert created.request_counts.processing == 3 and created.results_url is None
    batch = await client.messages.batches.retrieve(created.id)
    assert batch.processing_status == "ended" and batch.ended_at is not None
    counts = batch.request_counts
    assert (counts.processing, counts.succeeded, counts.expired, counts.errored) == (0, 1, 1, 1)
    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    assert results["c0"].type == "succeeded" and results["c0"].message.content[0].type == "text"
    assert results["c0"].message.usage.service_tier == "batch"
    assert results["c1"].type == "expired"
    assert results["c2"].type == "errored" and results["c2"].error.error.type == "invalid_request_error"
    assert len(fake_anthropic.batch_creates()) == 1 and fake_anthropic.message_requests() == []
    assert [(u["batch"], u.get("custom_id")) for u in fake_anthropic.usage_log] == [(True, "c0")]


async def test_batch_waits_for_end_batch_and_cancel(
        fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake_anthropic.batch_delay = None
    fake_anthropic.script(Reply.text("a"), Reply.text("b"))
    batch = await client.messages.batches.create(requests=_batch_requests(2))
    for _ in range(3):
        assert (await client.messages.batches.retrieve(batch.id)).processing_status == "in_progress"
    assert fake_anthropic.remaining() == 2  # entries are answered only when the batch ends
    fake_anthropic.end_batch(batch.id)
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.succeeded == 2
    assert [b.id async for b in client.messages.batches.list()] == [batch.id]

    other = await client.messages.batches.create(requests=_batch_requests(2))
    assert (await client.messages.batches.cancel(other.id)).processing_status == "canceling"
    canceled = await client.messages.batches.retrieve(other.id)
    assert canceled.processing_status == "ended" and canceled.request_counts.canceled == 2
    assert canceled.cancel_initiated_at is not None
    assert [r.result.type async for r in await client.messages.batches.results(other.id)] == ["canceled"] * 2


async def test_hang_does_not_block_and_times_out(
        fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    hanging = threading.Event()

    def responder(body: dict[str, Any]) -> Any:
        if body["messages"][0]["content"] == "slow":
            hanging.set()
            return Hang(60, then=Reply.text("late"))
        return Reply.text("fast")

    fake_anthropic.responder = responder
    slow = asyncio.create_task(client.messages.create(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "slow"}], timeout=1.5))
    assert await asyncio.to_thread(hanging.wait, 30)
    fast = await client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert fast.content[0].type == "text" and fast.content[0].text == "fast"
    with pytest.raises(anthropic.APITimeoutError):
        await slow


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


async def test_standalone_process_and_cross_process_batches(tmp_path: Path) -> None:
    port_file = tmp_path / "url"
    proc = _spawn("-m", "tests.fakes.messages_api", "--port-file", str(port_file), "--reply-text", "hello",
                  "--batch-delay", "none", "--no-strict-models")
    try:
        assert proc.stdout is not None
        url = (await asyncio.to_thread(proc.stdout.readline)).strip()
        assert url.startswith("http://127.0.0.1:") and port_file.read_text() == url
        async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as c:
            msg = await c.messages.create(model=MODEL, max_tokens=10, messages=USER)
            assert msg.content[0].type == "text" and msg.content[0].text == "hello"
            batch = await c.messages.batches.create(requests=_batch_requests(1))
            assert (await c.messages.batches.retrieve(batch.id)).processing_status == "in_progress"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
        if proc.stdout is not None:
            proc.stdout.close()


async def test_a_batch_created_by_another_process(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Reply.text("from the batch"))
    code = ("import anthropic, json, sys; c = anthropic.Anthropic(base_url=sys.argv[1], api_key='k', max_retries=0); "
            "print(c.messages.batches.create(requests=json.loads(sys.argv[2])).id)")
    proc = _spawn("-c", code, fake_anthropic.url, json.dumps(_batch_requests(1)))
    out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0
    async with anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="k", max_retries=0) as c:
        batch = await c.messages.batches.retrieve(out.strip())
        assert batch.processing_status == "ended"
        [line] = [r async for r in await c.messages.batches.results(batch.id)]
    assert line.result.type == "succeeded" and line.result.message.content[0].type == "text"


# -- the per-model rules, against the default (strict) fake --------------------------------------

@pytest.fixture
def strict() -> Iterator[FakeAnthropic]:
    """A FakeAnthropic with its defaults: per-model rules and per-model cache minimums."""
    with FakeAnthropic() as fake:
        fake.responder = lambda body: Reply.text("ok")
        yield fake


@pytest.fixture
async def sdk(strict: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=strict.url, api_key="test-key", max_retries=0) as c:
        yield c


OLD_API = {"anthropic-version": "2023-06-01"}
# the SDK itself warns of claude-opus-4-5 (end-of-life) and of thinking.type=enabled on claude-opus-4-6
SDK_WARNINGS = pytest.mark.filterwarnings("ignore:The model 'claude-opus-4-5' is deprecated:DeprecationWarning",
                                          "ignore:Using Claude with claude-opus-4-6:UserWarning")


async def _refused(call: Any, message: str, *, error: type[anthropic.APIStatusError] = anthropic.BadRequestError,
                   status: int = 400, error_type: str = "invalid_request_error") -> None:
    """`call` (an awaitable) fails with exactly this status, error type and message."""
    with pytest.raises(error) as info:
        await call
    assert info.value.status_code == status and info.value.type == error_type
    assert isinstance(info.value.body, dict) and info.value.body["error"]["message"] == message


async def _ok(sdk: anthropic.AsyncAnthropic, **kw: Any) -> anthropic.types.Message:
    msg: anthropic.types.Message = await sdk.messages.create(**{"max_tokens": 4096, "messages": USER, **kw})
    assert msg.content[0].type == "text" and msg.content[0].text == "ok"
    return msg


def test_the_rules_table_covers_the_documented_models() -> None:
    assert set(MODEL_RULES) == {
        "claude-fable-5-2", "claude-mythos-5-2", "claude-fable-5-1", "claude-mythos-5-1", "claude-fable-5",
        "claude-mythos-5", "claude-opus-5-5", "claude-opus-5", "claude-sonnet-5-5", "claude-sonnet-5",
        "claude-haiku-5-5", "claude-opus-4-8", "claude-opus-4-7", "claude-mythos-preview", "claude-opus-4-6",
        "claude-sonnet-4-6", "claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"}
    assert {m for m, r in MODEL_RULES.items() if not r.forced_tool} == {
        "claude-fable-5-2", "claude-mythos-5-2", "claude-fable-5-1", "claude-mythos-5-1", "claude-opus-5-5",
        "claude-sonnet-5-5"}
    assert {m for m, r in MODEL_RULES.items() if r.prefill} == {"claude-opus-4-5", "claude-sonnet-4-5",
                                                                 "claude-haiku-4-5"}


async def test_unknown_models_are_404_and_dated_snapshots_match(
        strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    strict.script(Reply.text("ok"))
    await _refused(sdk.messages.create(model="claude-test-1", max_tokens=10, messages=USER), "model: claude-test-1",
                   error=anthropic.NotFoundError, status=404, error_type="not_found_error")
    await _refused(sdk.messages.count_tokens(model="claude-sonnet-9", messages=USER), "model: claude-sonnet-9",
                   error=anthropic.NotFoundError, status=404, error_type="not_found_error")
    assert strict.remaining() == 1  # a refused request consumes no scripted action
    # a dated snapshot is its model: claude-haiku-4-5 takes a forced tool, claude-sonnet-5-5 does not
    await _ok(sdk, model="claude-haiku-4-5-20251001", tool_choice={"type": "any"})
    await _refused(sdk.messages.create(model="claude-sonnet-5-5-20260928", max_tokens=10, messages=USER,
                                       tool_choice={"type": "any"}), FORCED_TOOL)
    # the longest id wins: claude-opus-5-5-... is Opus 5.5 (adaptive only), not Opus 5 (disabled accepted)
    await _refused(sdk.messages.create(model="claude-opus-5-5-20260922", max_tokens=10, messages=USER,
                                       thinking={"type": "disabled"}),
                   '"thinking.type.disabled" is not supported for this model. '
                   'Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.')
    await _ok(sdk, model="claude-opus-5-20260501", thinking={"type": "disabled"})
    assert strict.requests[0].headers["anthropic-version"] == "2026-10-21"  # what SDK 2.x sends

    with FakeAnthropic(strict_models=False) as loose:  # anything goes for an unknown model
        loose.responder = lambda body: Reply.text("ok")
        async with anthropic.AsyncAnthropic(base_url=loose.url, api_key="k", max_retries=0) as c:
            await _ok(c, model="claude-test-1", tool_choice={"type": "any"}, thinking={"type": "disabled"},
                      extra_body={"temperature": 0.2})
            await _refused(c.messages.create(model="claude-sonnet-5-5", max_tokens=10, messages=USER,
                                             tool_choice={"type": "any"}), FORCED_TOOL)  # known: still checked


async def test_forced_tool_choice(strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    tool: Any = {"name": "propose", "input_schema": {"type": "object"}}
    for model in ("claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1", "claude-mythos-5-2"):
        for choice in ({"type": "tool", "name": "propose"}, {"type": "any"}):
            await _refused(sdk.messages.create(model=model, max_tokens=10, messages=USER, tools=[tool],
                                               tool_choice=choice), FORCED_TOOL)  # type: ignore[call-overload]
    await _refused(sdk.messages.count_tokens(model="claude-fable-5-1", messages=USER, tools=[tool],
                                             tool_choice={"type": "any"}), FORCED_TOOL)
    for choice in ({"type": "auto"}, {"type": "none"}):
        await _ok(sdk, model="claude-sonnet-5-5", tools=[tool], tool_choice=choice)
    assert (await sdk.messages.count_tokens(model="claude-sonnet-5-5", messages=USER,
                                            tool_choice={"type": "auto"})).input_tokens > 0
    # older models take forcing, but not with thinking on
    await _ok(sdk, model="claude-haiku-4-5", tools=[tool], tool_choice={"type": "tool", "name": "propose"})
    await _ok(sdk, model="claude-opus-4-8", tools=[tool], tool_choice={"type": "any"}, thinking={"type": "disabled"})
    await _ok(sdk, model="claude-opus-5", tools=[tool], tool_choice={"type": "any"})
    await _refused(sdk.messages.create(model="claude-haiku-4-5", max_tokens=4096, messages=USER, tools=[tool],
                                       tool_choice={"type": "any"},
                                       thinking={"type": "enabled", "budget_tokens": 2048}), FORCED_WITH_THINKING)
    await _refused(sdk.messages.create(model="claude-opus-4-6", max_tokens=4096, messages=USER, tools=[tool],
                                       tool_choice={"type": "tool", "name": "propose"},
                                       thinking={"type": "adaptive"}), FORCED_WITH_THINKING)


ADAPTIVE_HINT = 'Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'


@SDK_WARNINGS
async def test_thinking_types_effort_limits_and_budgets(strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    def create(model: str, thinking: Any, effort: Any = None, max_tokens: int = 4096) -> Any:
        return sdk.messages.create(model=model, max_tokens=max_tokens, messages=USER, thinking=thinking,
                                   output_config={"effort": effort} if effort else anthropic.omit)

    for model in ("claude-opus-5-5", "claude-fable-5-2", "claude-fable-5", "claude-mythos-5-1"):
        await _refused(create(model, {"type": "disabled"}),
                       f'"thinking.type.disabled" is not supported for this model. {ADAPTIVE_HINT}')
        await _refused(create(model, {"type": "enabled", "budget_tokens": 2048}),
                       f'"thinking.type.enabled" is not supported for this model. {ADAPTIVE_HINT}')
        await _ok(sdk, model=model, thinking={"type": "adaptive"})
        await _ok(sdk, model=model)  # omitted: always on
    await _refused(create("claude-opus-5-5", {"type": "between_tools"}),
                   f'"thinking.type.between_tools" is not supported for this model. {ADAPTIVE_HINT}')

    # Sonnet 5.5: between_tools instead of disabled, at low/medium/high only
    with pytest.raises(anthropic.BadRequestError) as info:
        await create("claude-sonnet-5-5", {"type": "disabled"})
    # the status, not the SDK's wording of its message (2.17 dropped the "Error code: 400 -" prefix)
    assert info.value.status_code == 400 and "between_tools" in str(info.value.body)
    assert isinstance(info.value.body, dict) and info.value.body["error"]["message"].startswith(
        '"thinking.type.disabled" is not supported for this model. To turn off up-front thinking, send '
        '"thinking": {"type": "between_tools"} instead of {"type": "disabled"}')
    for effort in (None, "low", "medium", "high"):
        await _ok(sdk, model="claude-sonnet-5-5", thinking={"type": "between_tools"},
                  **({"output_config": {"effort": effort}} if effort else {}))
    for effort in ("xhigh", "max"):
        await _refused(create("claude-sonnet-5-5", {"type": "between_tools"}, effort),
                       f"output_config.effort '{effort}' is not supported with thinking.type 'between_tools'. "
                       "Use effort 'high' or below, or adaptive thinking.")
        await _ok(sdk, model="claude-sonnet-5-5", thinking={"type": "adaptive"}, output_config={"effort": effort})

    # disabled only at effort high or below: Opus 5 and Haiku 5.5; Opus 4.8 (off by default): not at xhigh
    for model in ("claude-opus-5", "claude-haiku-5-5"):
        await _ok(sdk, model=model, thinking={"type": "disabled"}, output_config={"effort": "high"})
        for effort in ("xhigh", "max"):
            await _refused(create(model, {"type": "disabled"}, effort),
                           f"output_config.effort '{effort}' is not supported when thinking is disabled on this "
                           "model. Use effort 'high' or below, or enable thinking.")
    await _refused(sdk.messages.create(model="claude-opus-4-8", max_tokens=100, messages=USER,
                                       output_config={"effort": "xhigh"}),
                   "output_config.effort 'xhigh' is not supported when thinking is disabled on this model. "
                   "Use effort 'high' or below, or enable thinking.")
    await _ok(sdk, model="claude-opus-4-8", thinking={"type": "adaptive"}, output_config={"effort": "xhigh"})
    await _refused(create("claude-opus-4-8", {"type": "enabled", "budget_tokens": 2048}),
                   f'"thinking.type.enabled" is not supported for this model. {ADAPTIVE_HINT}')

    # extended thinking: the only mode before 4.6; budget >= 1024 and < max_tokens
    await _refused(create("claude-haiku-4-5", {"type": "adaptive"}),
                   '"thinking.type.adaptive" is not supported for this model. '
                   'Use "thinking.type.enabled" with "budget_tokens".')
    await _refused(create("claude-haiku-4-5", {"type": "enabled", "budget_tokens": 1023}),
                   "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    await _refused(create("claude-sonnet-4-5", {"type": "enabled", "budget_tokens": 2048}, max_tokens=2048),
                   "`max_tokens` must be greater than `thinking.budget_tokens`.")
    await _ok(sdk, model="claude-sonnet-4-5", max_tokens=2049, thinking={"type": "enabled", "budget_tokens": 2048})
    await _ok(sdk, model="claude-opus-4-6", thinking={"type": "enabled", "budget_tokens": 1024})  # deprecated, works


async def test_sampling_parameters_by_api_version_and_model(
        strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    def create(model: str, headers: Any = None, **extra: Any) -> Any:
        return sdk.messages.create(model=model, max_tokens=100, messages=USER, extra_body=extra,
                                   extra_headers=headers)

    # anthropic-version 2026-10-21 (the SDK's): no sampling parameter at any value, on any model
    for model in ("claude-sonnet-5-5", "claude-haiku-4-5", "claude-opus-4-6"):
        for name, value in (("temperature", 1.0), ("temperature", 0.5), ("top_p", 0.9), ("top_k", 5)):
            await _refused(create(model, **{name: value}), f"{name}: Extra inputs are not permitted")
    await _refused(sdk.messages.count_tokens(model="claude-haiku-4-5", messages=USER, extra_body={"top_p": 0.5}),
                   "top_p: Extra inputs are not permitted")

    # older versions: the per-model rules
    for model in ("claude-sonnet-5-5", "claude-opus-4-7", "claude-haiku-5-5", "claude-fable-5-2"):
        await _refused(create(model, OLD_API, temperature=0.5), "`temperature` is deprecated for this model.")
        await _refused(create(model, OLD_API, top_k=40), "`top_k` is deprecated for this model.")
        await _refused(create(model, OLD_API, temperature=1.0, top_p=0.99), SAMPLING_PAIR)  # even at defaults
        await _ok(sdk, model=model, extra_body={"temperature": 1.0}, extra_headers=OLD_API)
    await _refused(create("claude-sonnet-4-5", OLD_API, temperature=0.5, top_p=0.9), SAMPLING_PAIR)
    await _ok(sdk, model="claude-sonnet-4-5", extra_body={"temperature": 0.5}, extra_headers=OLD_API)
    await _ok(sdk, model="claude-haiku-4-5", extra_body={"temperature": 0.3, "top_p": 0.9, "top_k": 5},
              extra_headers=OLD_API)
    await _ok(sdk, model="claude-opus-4-6", extra_body={"temperature": 0.3}, extra_headers=OLD_API)
    # with thinking on: temperature only 1
    await _refused(sdk.messages.create(model="claude-opus-4-6", max_tokens=100, messages=USER,
                                       thinking={"type": "adaptive"}, extra_body={"temperature": 0.3},
                                       extra_headers=OLD_API),
                   "temperature may only be set to 1 when thinking is enabled or in adaptive mode.")
    await _ok(sdk, model="claude-haiku-4-5", thinking={"type": "enabled", "budget_tokens": 1024},
              extra_body={"temperature": 1}, extra_headers=OLD_API)


@SDK_WARNINGS
async def test_effort(strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    def create(model: str, effort: Any) -> Any:
        return sdk.messages.create(model=model, max_tokens=100, messages=USER, output_config={"effort": effort})

    for model in ("claude-sonnet-4-5", "claude-haiku-4-5-20251001"):
        await _refused(create(model, "low"), NO_EFFORT)
    for model in ("claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-5"):
        await _refused(create(model, "xhigh"), "output_config.effort 'xhigh' is not supported for this model. "
                                               "Supported values: 'low', 'medium', 'high', 'max'.")
        await _ok(sdk, model=model, output_config={"effort": "high"})
    for model in ("claude-opus-5-5", "claude-sonnet-5", "claude-haiku-5-5", "claude-opus-4-7"):
        for effort in ("low", "medium", "high", "xhigh", "max"):
            await _ok(sdk, model=model, output_config={"effort": effort})
    await _refused(sdk.messages.create(model="claude-opus-5-5", max_tokens=100, messages=USER,
                                       extra_body={"effort": "low"}), "effort: Extra inputs are not permitted")


@SDK_WARNINGS
async def test_assistant_prefill(strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    prefilled: list[Any] = [*USER, {"role": "assistant", "content": "{"}]
    for model in ("claude-sonnet-5-5", "claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-5-5", "claude-fable-5-2"):
        await _refused(sdk.messages.create(model=model, max_tokens=100, messages=prefilled), PREFILL)
    for model in ("claude-haiku-4-5", "claude-opus-4-5", "claude-sonnet-4-5"):
        await _ok(sdk, model=model, messages=prefilled)
    # a conversation ending with the user's turn (tool results) is no prefill
    await _ok(sdk, model="claude-sonnet-5-5", messages=[*prefilled, {"role": "user", "content": "go on"}])


async def test_minimum_cacheable_prompt_per_model(strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    system_text = "Every plan backs up before it migrates. " * 80  # ~ 900 tokens: over 512, under 1024
    tokens = _tokens({"type": "text", "text": system_text})
    assert 512 <= tokens < 1024

    async def cached(model: str) -> tuple[int, int]:
        msg = await _ok(sdk, **{**_cached_request("q", system_text=system_text), "model": model})
        return msg.usage.cache_creation_input_tokens or 0, msg.usage.cache_read_input_tokens or 0

    assert await cached("claude-sonnet-5-5") == (tokens, 0)  # 512
    assert await cached("claude-sonnet-5-5") == (0, tokens)
    for model in ("claude-sonnet-5", "claude-opus-4-8", "claude-opus-4-7", "claude-haiku-4-5"):  # 1024 .. 4096
        assert await cached(model) == (0, 0) and await cached(model) == (0, 0)  # no error, nothing cached
    strict.min_cache_tokens = 0  # an explicit minimum is every model's
    assert await cached("claude-haiku-4-5") == (tokens, 0)
    assert strict.min_cache_for("claude-opus-4-6") == 0
    strict.min_cache_tokens = None
    models = ("claude-fable-5-2", "claude-sonnet-4-6", "claude-mythos-preview", "claude-opus-4-6-20260201",
              "claude-test-1")
    assert [strict.min_cache_for(m) for m in models] == [512, 1024, 2048, 4096, 0]


async def test_refusal_is_a_200_with_stop_details(strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    strict.script(Reply.refusal(), Reply.refusal("bio", "declined: bio", text="Hello.."), Reply.refusal(None, None),
                  Reply.text("fine"))
    plain = await sdk.messages.create(model="claude-sonnet-5-5", max_tokens=100, messages=USER)
    assert plain.stop_reason == "refusal" and plain.content == []
    assert isinstance(plain.stop_details, anthropic.types.RefusalStopDetails)
    assert plain.stop_details.model_dump() == {
        "type": "refusal", "category": "cyber",
        "explanation": "This request was declined because it could enable cyber harm."}
    async with sdk.messages.stream(model="claude-sonnet-5-5", max_tokens=100, messages=USER) as stream:
        streamed = await stream.get_final_message()
    assert streamed.stop_reason == "refusal" and streamed.content[0].type == "text"
    assert streamed.content[0].text == "Hello.."
    assert streamed.stop_details is not None and streamed.stop_details.category == "bio"
    assert streamed.stop_details.explanation == "declined: bio"
    raw = await sdk.messages.create(model="claude-sonnet-5-5", max_tokens=100, messages=USER, stream=True)
    events = [e async for e in raw]
    assert [e.type for e in events] == ["message_start", "message_delta", "message_stop"]
    start, delta = events[0], events[1]
    assert start.type == "message_start" and start.message.stop_details is None
    assert delta.type == "message_delta" and delta.delta.stop_reason == "refusal"
    assert delta.delta.stop_details is not None and delta.delta.stop_details.category is None
    normal = await sdk.messages.create(model="claude-sonnet-5-5", max_tokens=100, messages=USER)
    assert normal.stop_reason == "end_turn" and normal.stop_details is None
    assert "stop_details" in normal.model_dump()  # carried, as null


async def test_a_tool_call_cut_off_at_max_tokens(strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    partial = '{"steps": ["a", "b"'
    cut = Reply.truncated_tool("propose", [{"steps": ["x"]}], partial)
    strict.script(cut, cut, cut, Reply.truncated_tool("propose", [], '{"steps": ["a", "b', stop_reason=
                                                      "model_context_window_exceeded"))
    raw = await sdk.messages.create(model="claude-sonnet-5-5", max_tokens=100, messages=USER, stream=True)
    events = [e async for e in raw]
    json_of = {i: "".join(e.delta.partial_json for e in events if e.type == "content_block_delta"
                          and e.index == i and e.delta.type == "input_json_delta") for i in (0, 1)}
    assert json_of == {0: '{"steps":["x"]}', 1: partial}  # exactly the cut-off text
    assert [e.type for e in events][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert [e.delta.stop_reason for e in events if e.type == "message_delta"] == ["max_tokens"]

    # what the SDK's accumulator makes of it: jiter's partial mode keeps every complete value
    async with sdk.messages.stream(model="claude-sonnet-5-5", max_tokens=100, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    blocks = [b for b in final.content if b.type == "tool_use"]
    assert [b.input for b in blocks] == [{"steps": ["x"]}, {"steps": ["a", "b"]}]
    assert all(b.name == "propose" and b.id.startswith("toolu_") for b in blocks)
    # non-streaming: the same, parsed as far as it goes
    plain = await sdk.messages.create(model="claude-sonnet-5-5", max_tokens=100, messages=USER)
    assert plain.stop_reason == "max_tokens" and [b.input for b in plain.content if b.type == "tool_use"] == [
        {"steps": ["x"]}, {"steps": ["a", "b"]}]
    # a string cut in the middle is dropped (partial mode), and the other truncation stop reason
    async with sdk.messages.stream(model="claude-sonnet-5-5", max_tokens=100, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "model_context_window_exceeded"
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"steps": ["a"]}]


async def test_batch_entries_follow_the_rules_and_cancel(strict: FakeAnthropic, sdk: anthropic.AsyncAnthropic) -> None:
    strict.responder = lambda body: Reply.text("ok")
    ask: list[Any] = [{"role": "user", "content": "q"}]
    params = {"max_tokens": 100, "messages": ask}
    requests: list[Any] = [
        {"custom_id": "fine", "params": {"model": "claude-sonnet-5-5", **params}},
        {"custom_id": "forced", "params": {"model": "claude-opus-5-5", **params, "tool_choice": {"type": "any"}}},
        {"custom_id": "temp", "params": {"model": "claude-haiku-4-5", **params, "temperature": 0.5}},
        {"custom_id": "nomodel", "params": {"model": "claude-test-1", **params}},
        {"custom_id": "prefill", "params": {"model": "claude-sonnet-5-5", "max_tokens": 100,
                                            "messages": [*ask, {"role": "assistant", "content": "{"}]}},
    ]
    strict.script(Reply.text("scripted"))
    batch = await sdk.messages.batches.retrieve((await sdk.messages.batches.create(requests=requests)).id)
    assert batch.processing_status == "ended"
    counts = batch.request_counts
    assert (counts.succeeded, counts.errored) == (1, 4)
    results = {r.custom_id: r.result async for r in await sdk.messages.batches.results(batch.id)}
    fine = results["fine"]
    assert fine.type == "succeeded" and fine.message.content[0].type == "text"
    assert fine.message.content[0].text == "scripted" and fine.message.stop_details is None
    errors = {cid: (r.error.error.type, r.error.error.message) for cid, r in results.items() if r.type == "errored"}
    assert errors == {"forced": ("invalid_request_error", FORCED_TOOL),
                      "temp": ("invalid_request_error", "temperature: Extra inputs are not permitted"),
                      "nomodel": ("not_found_error", "model: claude-test-1"),
                      "prefill": ("invalid_request_error", PREFILL)}
    assert strict.remaining() == 0 and len(strict.usage_log) == 1  # refused entries are not billed
    # the batch's own anthropic-version decides the sampling rule
    old = await sdk.messages.batches.create(requests=[requests[2]], extra_headers=OLD_API)
    [line] = [r async for r in await sdk.messages.batches.results(
        (await sdk.messages.batches.retrieve(old.id)).id)]
    assert line.result.type == "succeeded"

    # cancel: entries already sent to the model finish, the rest are canceled
    strict.batch_delay = None
    three: Any = [{"custom_id": f"c{i}", "params": {"model": "claude-sonnet-5-5", **params}} for i in range(3)]
    b = await sdk.messages.batches.create(requests=three)
    strict.run_entries(b.id, 1)
    assert (await sdk.messages.batches.retrieve(b.id)).request_counts.succeeded == 1
    assert strict.cancels == []
    canceling = await sdk.messages.batches.cancel(b.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    assert strict.cancels == [b.id] and strict.batches[b.id].processing_status == "canceling"
    ended = await sdk.messages.batches.retrieve(b.id)
    assert ended.processing_status == "ended" == strict.batches[b.id].processing_status
    assert (ended.request_counts.succeeded, ended.request_counts.canceled, ended.request_counts.processing) == (1, 2, 0)
    assert strict.batches[b.id].counts()["canceled"] == 2
    assert [(r.custom_id, r.result.type) async for r in await sdk.messages.batches.results(b.id)] == [
        ("c0", "succeeded"), ("c1", "canceled"), ("c2", "canceled")]
    await sdk.messages.batches.cancel(b.id)  # a cancel of an ended batch changes nothing, and is recorded
    assert strict.cancels == [b.id, b.id] and (await sdk.messages.batches.retrieve(b.id)).request_counts.canceled == 2
