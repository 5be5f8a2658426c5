"""The fake Anthropic server, exercised with the real, unpatched `anthropic.AsyncAnthropic` client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from .fake_anthropic import Expire, FakeAnthropic, Hang, HttpError, Reply, StreamError, fake_anthropic  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
MODEL = "claude-test-1"
USER: list[Any] = [{"role": "user", "content": "propose something"}]


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
    assert reads[0] == 0 and all(b > a > 0 for a, b in zip(reads[1:], reads[2:]))


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
    proc = _spawn("-m", "tests.fake_anthropic", "--port-file", str(port_file), "--reply-text", "hello",
                  "--batch-delay", "none")
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
