"""One way to call Claude for every reverie component: the `Claude` client and its outage policy.

Options live in options.py, fatal-error rules and the SDK middleware in policy.py, prices in
prices.py; their names are re-exported here.

Failure policy, decided once here (other frameworks leave it to their users):

- connection errors, 408/409, 429 (honouring `retry-after`) and 5xx/529: the SDK's own
  retries (`max_retries`), as the SDK implements them;
- an `overloaded_error` that arrives *inside* a 200 stream (the SDK does not retry it): our
  retry with exponential backoff and jitter (`overloaded_retries`);
- authentication, permission, billing and spend-limit errors, a model that does not exist, a
  request the API calls invalid: `ClaudeFatal` at once, never a retry loop (the SDK would
  retry a 429 `enforced_spend_limit_reached` until its budget ran out: a middleware stops it);
- anything still failing after its retries: `ClaudeUnavailable`, which is *not* a
  `ReverieError`: the dreamer's handler raises, the task is redelivered later and resumes
  from its checkpoint instead of failing for a night's outage.

Every call holds a per-model semaphore (`concurrency`) and has a request `timeout`; a cancelled
caller cancels its HTTP request (asyncio cancellation closes the stream).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import anthropic
import httpx2
import msgspec
from anthropic.types import Message

from reverie.protocol import Usage

from .errors import ClaudeConfigError, ClaudeFatal, ClaudeOutage, ClaudeUnavailable
from .models import SAMPLING_API, rules_for
from .options import ClaudeOptions, check_options
from .policy import client_kwargs, fatal_error, in_stream, retry_after, semaphore
from .prices import DEFAULT_PRICES, Price, cost_of, price_of, say_unpriced, usage_of

__all__ = [
    "DEFAULT_PRICES",
    "BatchMiss",
    "Claude",
    "ClaudeConfigError",
    "ClaudeFatal",
    "ClaudeOptions",
    "ClaudeOutage",
    "ClaudeUnavailable",
    "Price",
    "check_options",
    "client_kwargs",
    "cost_of",
    "fatal_error",
    "price_of",
    "usage_of",
]

log = logging.getLogger("reverie.claude")


class Claude:
    """A client for one component. `create` streams a message (so long outputs never hit the
    non-streaming limit) and returns it with its `Usage`; `submit_batch`/`poll_batch` run
    the Message Batches API. Use it as `async with Claude(options) as claude:`."""

    def __init__(self, options: ClaudeOptions, *, api_key: str | None = None) -> None:
        self.options = options
        self.rules = rules_for(options.model)
        self.price = price_of(options)
        if self.price is None:
            say_unpriced(options.model)
        self.client = anthropic.AsyncAnthropic(**client_kwargs(options, api_key=api_key))
        self._closed = False

    async def __aenter__(self) -> Claude:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP client; closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        await self.client.close()

    def usage(self, usage: Any, *, batched: bool) -> Usage:
        return usage_of(usage, self.price, self.options.model, batched=batched)

    # ------------------------------------------------------------------ requests by the model's rules

    def params(self, *, refining: bool, **request: Any) -> dict[str, Any]:
        """Request parameters with the configured model, token limit, thinking, effort (and a
        temperature only where `check_options` let one through)."""
        o, rules = self.options, self.rules
        params: dict[str, Any] = {"model": o.model, "max_tokens": (o.refine_max_tokens or o.max_tokens)
                                  if refining else o.max_tokens}
        temperature = o.refine_temperature if refining and o.refine_temperature is not None else o.temperature
        thinking = self.thinking()
        if thinking is not None:
            params["thinking"] = thinking
        if temperature is not None and SAMPLING_API and rules.sampling and not self.thinks:
            params["temperature"] = temperature
        effort = o.refine_effort if refining and o.refine_effort is not None else o.effort
        if effort is not None and rules.efforts:
            params["output_config"] = {"effort": effort}
        return params | request

    def thinking(self) -> dict[str, Any] | None:
        """The `thinking` parameter: None sends none (the model's default)."""
        o, rules = self.options, self.rules
        if o.thinking == "enabled":
            return {"type": "enabled", "budget_tokens": o.thinking_budget}
        if o.thinking == "adaptive":
            return {"type": "adaptive"}
        return {"type": rules.off} if rules.off is not None else None

    @property
    def thinks(self) -> bool:
        """Does a request of these options think (so no forced tool choice, no temperature)?"""
        if self.options.thinking != "off":
            return True
        return self.rules.off is None

    def tool_choice(self, name: str) -> dict[str, Any] | None:
        """Force `name` where the model allows it; None where it does not (ask with `auto` and
        say in the prompt that the tool must be called)."""
        if self.rules.forced_tool_choice and not self.thinks:
            return {"type": "tool", "name": name}
        return None

    async def create(self, params: Mapping[str, Any], *, deadline: float | None = None) -> tuple[Message, Usage]:
        """One model call. The SDK retries each HTTP request (`max_retries`); an overloaded
        stream is retried here (`overloaded_retries`); a call that still fails is an outage,
        waited out with growing delays (`outage_backoff` doubling to `outage_max_delay`) for
        up to `outage_limit` seconds and never past `deadline` (monotonic), then
        `ClaudeOutage` with the API's last message."""
        o = self.options
        began = time.monotonic()
        delay = o.outage_backoff
        calls = 0
        while True:
            try:
                return await self._call(params)
            except ClaudeUnavailable as exc:
                calls += 1
                now = time.monotonic()
                wait = min(max(delay, exc.retry_after or 0.0), max(o.outage_max_delay, exc.retry_after or 0.0))
                if now + wait - began > o.outage_limit or (deadline is not None and now + wait > deadline):
                    bound = "the task's time budget" if deadline is not None and now + wait > deadline \
                        else f"outage_limit ({o.outage_limit:g}s)"
                    raise ClaudeOutage(f"Claude unavailable for {now - began:.0f}s over {calls} call(s), giving up "
                                       f"within {bound}; last: {exc}") from None
                log.warning("Claude unavailable (%s); call %d, trying again in %.1fs", exc, calls, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, o.outage_max_delay)

    async def _call(self, params: Mapping[str, Any]) -> tuple[Message, Usage]:
        attempts = self.options.overloaded_retries + 1
        for attempt in range(attempts):
            try:
                async with semaphore(self.options.model, self.options.concurrency):
                    async with self.client.messages.stream(**_sdk_kwargs(params)) as stream:
                        message = await stream.get_final_message()
                if message.stop_reason is None:  # the stream ended without message_delta: a dropped connection
                    raise ClaudeUnavailable(
                        "the connection dropped mid-stream (no stop_reason: the answer is incomplete)")
                return message, self.usage(message.usage, batched=False)
            except anthropic.APIStatusError as exc:
                fatal = fatal_error(exc, self.options)
                if fatal is not None:
                    raise fatal from None
                if not in_stream(exc) or exc.type != "overloaded_error":
                    raise ClaudeUnavailable(f"{exc.status_code} {exc.type or 'error'}: {exc.api_message or exc}",
                                            retry_after=retry_after(exc.response.headers)) from exc
                if attempt + 1 == attempts:
                    raise ClaudeUnavailable(f"overloaded mid-stream {attempts} times: {exc.api_message}") from exc
                delay = self.options.overloaded_backoff * 2 ** attempt * (0.5 + random.random() / 2)
                log.warning("Claude overloaded mid-stream (attempt %d of %d); retrying in %.1fs",
                            attempt + 1, attempts, delay)
                await asyncio.sleep(delay)
            except (anthropic.APIConnectionError, anthropic.APIResponseValidationError) as exc:
                raise ClaudeUnavailable(f"Claude unreachable after the SDK's retries: {exc}") from exc
            except httpx2.TransportError as exc:  # the connection dropped while the stream was read
                raise ClaudeUnavailable(f"the connection dropped mid-stream: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ Message Batches

    async def submit_batch(self, requests: list[tuple[str, dict[str, Any]]]) -> str:
        """Create one batch of `(custom_id, params)`; returns its id."""
        try:
            batch = await self.client.messages.batches.create(
                requests=[{"custom_id": cid, "params": params} for cid, params in requests])  # type: ignore[typeddict-item]
        except anthropic.APIStatusError as exc:
            raise fatal_error(exc, self.options) or ClaudeUnavailable(f"creating a batch failed: {exc}") from exc
        except anthropic.APIConnectionError as exc:
            raise ClaudeUnavailable(f"creating a batch failed: {exc}") from exc
        return batch.id

    async def cancel_batch(self, batch_id: str) -> None:
        """Ask the API to cancel a batch we no longer wait for, so it is not billed on; a batch
        that has ended (or is gone) needs nothing."""
        try:
            await self.client.messages.batches.cancel(batch_id)
        except anthropic.APIStatusError as exc:
            if exc.status_code not in (404, 409):
                log.warning("cancelling batch %s failed: %s", batch_id, exc)
        except anthropic.APIConnectionError as exc:
            log.warning("cancelling batch %s failed: %s", batch_id, exc)

    async def poll_batch(self, batch_id: str) -> dict[str, tuple[Message, Usage] | BatchMiss] | None:
        """None while the batch runs; once it ended, per custom_id either the message with its
        usage (at the batch price) or why the entry has none."""
        try:
            batch = await self.client.messages.batches.retrieve(batch_id)
            if batch.processing_status != "ended":
                return None
            out: dict[str, tuple[Message, Usage] | BatchMiss] = {}
            async for entry in await self.client.messages.batches.results(batch_id):
                result = entry.result
                if result.type == "succeeded":
                    out[entry.custom_id] = (result.message, self.usage(result.message.usage, batched=True))
                elif result.type == "errored":
                    error = result.error.error
                    out[entry.custom_id] = BatchMiss("errored", f"{error.type}: {error.message}",
                                                     fatal=error.type == "invalid_request_error")
                else:  # canceled (by us or by the operator) or expired
                    out[entry.custom_id] = BatchMiss(result.type, result.type, fatal=result.type == "canceled")
            return out
        except anthropic.APIStatusError as exc:
            if exc.status_code == 404:
                return {}  # gone (older than 29 days, or another workspace): every entry is lost
            raise fatal_error(exc, self.options) or ClaudeUnavailable(f"polling batch {batch_id}: {exc}") from exc
        except anthropic.APIConnectionError as exc:
            raise ClaudeUnavailable(f"polling batch {batch_id}: {exc}") from exc


class BatchMiss(msgspec.Struct, frozen=True):
    """A batch entry without a message. `fatal`: sending it again cannot help (an invalid
    request must be fixed first; an entry the operator cancelled stays cancelled)."""

    kind: str
    detail: str
    fatal: bool = False


def _sdk_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """This SDK's `messages.stream` has no `temperature` argument; under an API version that
    takes one (for a model that does), it travels in the body."""
    kwargs = dict(params)
    if "temperature" in kwargs:
        kwargs["extra_body"] = {**kwargs.get("extra_body", {}), "temperature": kwargs.pop("temperature")}
    return kwargs
