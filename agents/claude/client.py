"""One way to call Claude for every reverie component: options, failure policy, usage and cost.

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
import os
import random
from collections.abc import Mapping
from typing import Any, Literal

import anthropic
import msgspec
from anthropic.types import Message

from reverie.protocol import ReverieError, Usage

__all__ = ["DEFAULT_PRICES", "Claude", "ClaudeFatal", "ClaudeOptions", "ClaudeUnavailable", "Price", "client_kwargs",
           "check_options", "cost_of"]

log = logging.getLogger("reverie.claude")


class Price(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """USD per million tokens. Cache writes (5-minute TTL) cost 1.25x input, cache reads 0.1x
    input, and the Message Batches API halves everything: Anthropic's published rules."""

    input: float
    output: float
    cache_write: float | None = None
    cache_read: float | None = None
    batch_discount: float = 0.5


DEFAULT_PRICES: dict[str, Price] = {
    "claude-fable-5-1": Price(input=10.0, output=50.0),
    "claude-opus-5-5": Price(input=4.0, output=20.0),
    "claude-opus-5": Price(input=5.0, output=25.0),
    "claude-sonnet-5-5": Price(input=2.0, output=10.0),
    "claude-sonnet-5": Price(input=2.0, output=10.0),
    "claude-opus-4-5": Price(input=5.0, output=25.0),
    "claude-sonnet-4-5": Price(input=3.0, output=15.0),
    "claude-haiku-4-5": Price(input=1.0, output=5.0),
}
"""Matched by prefix of the model id (`claude-sonnet-4-5-20250929` is `claude-sonnet-4-5`);
`prices` in the deploy config adds to and overrides these."""


class ClaudeOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one component calls Claude (`reasoner_options` of a dreamer, `options` of an LLM critic)."""

    model: str = "claude-sonnet-5-5"
    max_tokens: int = 4096
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    """`output_config.effort`: how much work the model puts in (None: the model's default)."""
    refine_effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    """Effort from round 2 on; None keeps `effort`."""
    temperature: float | None = None
    """Only for models that still take one (the current ones fix it); sent in the request body."""
    thinking: Literal["off", "enabled", "adaptive"] = "off"
    """`enabled` = extended thinking with `thinking_budget` tokens; `adaptive` lets the model decide."""
    thinking_budget: int = 2048
    refine_temperature: float | None = None
    """Temperature from round 2 on (refinement usually wants less randomness); None keeps `temperature`."""
    refine_max_tokens: int | None = None
    timeout: float = 120.0
    """Seconds one HTTP request may take."""
    max_retries: int = 4
    """The SDK's retries of connection errors, 429 and 5xx."""
    overloaded_retries: int = 4
    overloaded_backoff: float = 1.0
    """First delay (seconds) before retrying an overloaded stream; doubles per attempt."""
    concurrency: int = 8
    """Requests in flight per model in this process."""
    mode: Literal["sync", "batch"] = "sync"
    """`batch`: each round's requests go through the Message Batches API (half price, not urgent)."""
    batch_poll: float = 30.0
    """Seconds between polls of a running batch."""
    batch_attempts: int = 3
    """Batches one round may need when entries expire or error, before the round gives up."""
    base_url: str | None = None
    """Default: `$ANTHROPIC_BASE_URL`, else Anthropic's API."""
    api_key_env: str = "ANTHROPIC_API_KEY"
    """The environment variable holding the key (the key itself never goes in a config file)."""
    prices: dict[str, Price] = {}
    instructions: str = ""
    """Extra guidance appended to the system prompt."""
    constitution: list[str] = []
    """Natural-language rules, one per item. An `llm-critic` judges by them; a reasoner sees
    them in its cached prefix (by default the rules of the LLM critics it waits for)."""
    memory_tool: bool = False
    """Reasoner, sync mode: give Claude the memory tool (`memory_20250818`) over the dreamer's
    LMDB memory, so it reads (and writes notes into) the synthetic memory before proposing."""
    memory_turns: int = 8
    """The most memory-tool turns one round may take before it must propose."""


class ClaudeFatal(ReverieError):
    """Retrying cannot help (bad key, spend limit, unknown model, invalid request): the task
    fails at once with this message."""


class ClaudeUnavailable(Exception):
    """Claude did not answer after every retry. Deliberately not a `ReverieError`: the task is
    redelivered later instead of failing."""


def _key_hint(options: ClaudeOptions) -> str:
    return (f"set {options.api_key_env} to an Anthropic API key (https://console.anthropic.com/settings/keys), "
            f"or name another variable with api_key_env")


def check_options(options: ClaudeOptions) -> None:
    """Config-time checks: a missing key is a one-line error at `reverie up`, not a traceback."""
    if not os.environ.get(options.api_key_env):
        raise ClaudeFatal(f"{options.api_key_env} is not set: {_key_hint(options)}")
    if options.max_tokens < 1 or options.concurrency < 1 or options.timeout <= 0:
        raise ClaudeFatal("max_tokens, concurrency and timeout must be positive")
    if options.memory_tool and options.mode == "batch":
        raise ClaudeFatal("memory_tool needs mode = \"sync\": a batch cannot run a tool loop")
    if options.thinking == "enabled" and not 1024 <= options.thinking_budget < options.max_tokens:
        raise ClaudeFatal(f"thinking_budget must be at least 1024 and below max_tokens ({options.max_tokens})")


def price_of(options: ClaudeOptions) -> Price | None:
    table = DEFAULT_PRICES | options.prices
    matches = [name for name in table if options.model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def cost_of(usage: Any, price: Price | None, *, batched: bool) -> float | None:
    """USD for one response's `usage` (an SDK `Usage` or anything with its four token fields)."""
    if price is None:
        return None
    write = price.cache_write if price.cache_write is not None else price.input * 1.25
    read = price.cache_read if price.cache_read is not None else price.input * 0.1
    total = ((usage.input_tokens or 0) * price.input + (usage.output_tokens or 0) * price.output
             + (getattr(usage, "cache_creation_input_tokens", 0) or 0) * write
             + (getattr(usage, "cache_read_input_tokens", 0) or 0) * read) / 1e6
    return total * (price.batch_discount if batched else 1.0)


_semaphores: dict[tuple[int, str], asyncio.Semaphore] = {}


def _semaphore(model: str, limit: int) -> asyncio.Semaphore:
    """One per event loop and model, so every component of a process shares the limit."""
    key = (id(asyncio.get_running_loop()), model)
    sem = _semaphores.get(key)
    if sem is None:
        sem = _semaphores[key] = asyncio.Semaphore(limit)
    return sem


_SPEND_CAP = ("Anthropic spend limit reached (429 enforced_spend_limit_reached): "
              "access resumes next month or after a tier change; not retrying")


async def _stop_spend_limit_retries(request: Any, call_next: Any) -> Any:
    """The SDK retries every 429; one that says the spend cap is reached fails until next
    month, so answer it at once (middleware exceptions propagate without retries)."""
    response = await call_next(request)
    if response.status_code == 429 and b"enforced_spend_limit_reached" in await response.read():
        raise ClaudeFatal(_SPEND_CAP)
    return response


def _stop_spend_limit_retries_sync(request: Any, call_next: Any) -> Any:
    response = call_next(request)
    if response.status_code == 429 and b"enforced_spend_limit_reached" in response.read():
        raise ClaudeFatal(_SPEND_CAP)
    return response


def client_kwargs(options: ClaudeOptions, *, api_key: str | None = None, sync: bool = False) -> dict[str, Any]:
    """What every reverie Anthropic client is built with: the key from `api_key_env`, the
    base URL, timeout and retries of the options, and the spend-limit guard."""
    key = api_key or os.environ.get(options.api_key_env)
    if not key:
        raise ClaudeFatal(f"{options.api_key_env} is not set: {_key_hint(options)}")
    return {"api_key": key, "base_url": options.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            "timeout": options.timeout, "max_retries": options.max_retries,
            "middleware": [_stop_spend_limit_retries_sync if sync else _stop_spend_limit_retries]}


def fatal_error(exc: anthropic.APIStatusError, options: ClaudeOptions) -> ClaudeFatal | None:
    """The `ClaudeFatal` an API error amounts to, or None when retrying later may help."""
    message = exc.api_message or str(exc)
    status = exc.status_code
    if status == 401:
        return ClaudeFatal(f"Anthropic refused the API key (401 authentication_error: {message}): {_key_hint(options)}")
    if status == 403:
        return ClaudeFatal(f"the API key may not use this (403 permission_error): {message}")
    if status == 402 or exc.type == "billing_error":
        return ClaudeFatal(f"Anthropic billing error ({status}): {message}")
    if status == 429 and exc.error_code == "enforced_spend_limit_reached":
        return ClaudeFatal(f"Anthropic spend limit reached (429): {message}")
    if status == 400:
        lowered = message.lower()
        if "usage limits" in lowered or "credit balance" in lowered or "spend limit" in lowered:
            return ClaudeFatal(f"Anthropic spend limit reached: {message}")
        return ClaudeFatal(f"Anthropic rejected the request (400 {exc.type or 'invalid_request_error'}): {message}")
    if status in (404, 413):
        return ClaudeFatal(f"Anthropic rejected the request ({status} {exc.type}): {message}")
    return None


def _sdk_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """This SDK's `messages.stream` has no `temperature` argument (newer models fix it); the
    API still takes one for models that do, so it travels in the body."""
    kwargs = dict(params)
    if "temperature" in kwargs:
        kwargs["extra_body"] = {**kwargs.get("extra_body", {}), "temperature": kwargs.pop("temperature")}
    return kwargs


def _overloaded(exc: anthropic.APIStatusError) -> bool:
    return exc.type == "overloaded_error" or exc.status_code == 529


class Claude:
    """A client for one component. `create` streams a message (so long outputs never hit the
    non-streaming limit) and returns it with its `Usage`; `submit_batch`/`poll_batch` run
    the Message Batches API."""

    def __init__(self, options: ClaudeOptions, *, api_key: str | None = None) -> None:
        self.options = options
        self.price = price_of(options)
        self.client = anthropic.AsyncAnthropic(**client_kwargs(options, api_key=api_key))

    async def close(self) -> None:
        await self.client.close()

    def usage(self, usage: Any, *, batched: bool) -> Usage:
        return Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0,
                     cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
                     cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
                     requests=1, batched=int(batched), cost_usd=cost_of(usage, self.price, batched=batched))

    def params(self, *, refining: bool, **request: Any) -> dict[str, Any]:
        """Request parameters with the configured model, token limit, temperature, thinking."""
        o = self.options
        params: dict[str, Any] = {"model": o.model, "max_tokens": (o.refine_max_tokens or o.max_tokens)
                                  if refining else o.max_tokens}
        temperature = o.refine_temperature if refining and o.refine_temperature is not None else o.temperature
        if o.thinking == "enabled":
            params["thinking"] = {"type": "enabled", "budget_tokens": o.thinking_budget}
        elif o.thinking == "adaptive":
            params["thinking"] = {"type": "adaptive"}
        elif temperature is not None:  # the API refuses a temperature other than 1 with thinking
            params["temperature"] = temperature
        effort = o.refine_effort if refining and o.refine_effort is not None else o.effort
        if effort is not None:
            params["output_config"] = {"effort": effort}
        return params | request

    async def create(self, params: Mapping[str, Any]) -> tuple[Message, Usage]:
        attempts = self.options.overloaded_retries + 1
        for attempt in range(attempts):
            try:
                async with _semaphore(self.options.model, self.options.concurrency):
                    async with self.client.messages.stream(**_sdk_kwargs(params)) as stream:
                        message = await stream.get_final_message()
                return message, self.usage(message.usage, batched=False)
            except anthropic.APIStatusError as exc:
                fatal = fatal_error(exc, self.options)
                if fatal is not None:
                    raise fatal from None
                if not _overloaded(exc) or attempt + 1 == attempts:
                    raise ClaudeUnavailable(f"Claude failed after {attempt + 1} attempt(s): {exc}") from exc
                delay = self.options.overloaded_backoff * 2 ** attempt * (0.5 + random.random() / 2)
                log.warning("Claude overloaded mid-stream (attempt %d of %d); retrying in %.1fs",
                            attempt + 1, attempts, delay)
                await asyncio.sleep(delay)
            except (anthropic.APIConnectionError, anthropic.APIResponseValidationError) as exc:
                raise ClaudeUnavailable(f"Claude unreachable after the SDK's retries: {exc}") from exc
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

    async def poll_batch(self, batch_id: str) -> dict[str, tuple[Message, Usage] | str] | None:
        """None while the batch runs; once it ended, per custom_id either the message with its
        usage (at the batch price) or why the entry has none (`errored: …`, `expired`, `canceled`)."""
        try:
            batch = await self.client.messages.batches.retrieve(batch_id)
            if batch.processing_status != "ended":
                return None
            out: dict[str, tuple[Message, Usage] | str] = {}
            async for entry in await self.client.messages.batches.results(batch_id):
                result = entry.result
                if result.type == "succeeded":
                    out[entry.custom_id] = (result.message, self.usage(result.message.usage, batched=True))
                elif result.type == "errored":
                    out[entry.custom_id] = f"errored: {result.error.error.message}"
                else:
                    out[entry.custom_id] = result.type
            return out
        except anthropic.APIStatusError as exc:
            if exc.status_code == 404:
                return {}  # gone (older than 29 days, or another workspace): every entry is lost
            raise fatal_error(exc, self.options) or ClaudeUnavailable(f"polling batch {batch_id}: {exc}") from exc
        except anthropic.APIConnectionError as exc:
            raise ClaudeUnavailable(f"polling batch {batch_id}: {exc}") from exc
