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
import json
import logging
import os
import random
import time
from collections.abc import Mapping
from typing import Any, Literal

import anthropic
import httpx2
import msgspec
from anthropic.types import Message

from reverie.protocol import ReverieError, Usage

from .models import (
    API_VERSION,
    SAMPLING_API,
    ModelRules,
    ThinkingType,
    model_entry,
    rules_for,
)

__all__ = ["DEFAULT_PRICES", "Claude", "ClaudeFatal", "ClaudeOptions", "ClaudeUnavailable", "Price", "client_kwargs",
           "check_options", "cost_of"]

log = logging.getLogger("reverie.claude")


class Price(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """USD per million tokens. Unset cache rates follow Anthropic's general multipliers (5-minute
    writes 1.25x input, 1-hour writes 2x, reads 0.1x); the built-in table sets every model's own,
    because several differ (reads are 0.05x on Opus 5.5 and Sonnet 5.5, 0.025x on Fable 5.1/5.2).
    The Message Batches API halves everything. `long_prompt_tokens`: a request whose prompt
    (input + cache reads + cache writes) is longer pays every rate times `long_prompt_factor`
    (Haiku 5.5: over 100,000 tokens, 5x)."""

    input: float
    output: float
    cache_write: float | None = None
    cache_write_1h: float | None = None
    cache_read: float | None = None
    batch_discount: float = 0.5
    long_prompt_tokens: int | None = None
    long_prompt_factor: float = 1.0


def _p(input: float, output: float, write: float, write_1h: float, read: float, **kw: Any) -> Price:
    return Price(input=input, output=output, cache_write=write, cache_write_1h=write_1h, cache_read=read, **kw)


DEFAULT_PRICES: dict[str, Price] = {
    # platform.claude.com/docs pricing and model pages, read 2026-12 (Fable/Mythos 5.2 cache rates:
    # 0.025x input, as Fable 5.1); Claude Mythos Preview has no public price
    "claude-fable-5-2": _p(8.0, 40.0, 10.0, 16.0, 0.20),
    "claude-mythos-5-2": _p(8.0, 40.0, 10.0, 16.0, 0.20),
    "claude-fable-5-1": _p(10.0, 50.0, 12.5, 20.0, 0.25),
    "claude-mythos-5-1": _p(10.0, 50.0, 12.5, 20.0, 0.25),
    "claude-fable-5": _p(10.0, 50.0, 12.5, 20.0, 1.0),
    "claude-mythos-5": _p(10.0, 50.0, 12.5, 20.0, 1.0),
    "claude-opus-5-5": _p(4.0, 20.0, 5.0, 8.0, 0.20),
    "claude-opus-5": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-sonnet-5-5": _p(2.0, 10.0, 2.5, 4.0, 0.10),
    "claude-sonnet-5": _p(2.0, 10.0, 2.5, 4.0, 0.20),
    "claude-haiku-5-5": _p(0.10, 0.50, 0.125, 0.20, 0.01, long_prompt_tokens=100_000, long_prompt_factor=5.0),
    "claude-opus-4-8": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-opus-4-7": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-opus-4-6": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-opus-4-5": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-sonnet-4-6": _p(3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-sonnet-4-5": _p(3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-haiku-4-5": _p(1.0, 5.0, 1.25, 2.0, 0.10),
}
"""Matched by the longest model id the model starts with (`claude-haiku-4-5-20251001` is
`claude-haiku-4-5`); `prices` in the deploy config adds to and overrides these."""


class ClaudeOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one component calls Claude (`reasoner_options` of a dreamer, `options` of an LLM critic)."""

    model: str = "claude-sonnet-5-5"
    max_tokens: int = 4096
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    """`output_config.effort`: how much work the model puts in (None: the model's default)."""
    refine_effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    """Effort from round 2 on; None keeps `effort`."""
    temperature: float | None = None
    """Only where the API takes one: never under API version 2026-10-21 (the installed SDK's), and
    never on the 4.7+ and 5.x models; anywhere else a config error names the field."""
    thinking: Literal["off", "enabled", "adaptive"] = "off"
    """`off`: sent as the model's way to turn thinking off (`disabled`; Sonnet 5.5 `between_tools`);
    on models that always think (Fable 5.x, Opus 5.5) it cannot be off, which the log says once.
    `enabled` = extended thinking with `thinking_budget` tokens (the 4.5 and 4.6 models only);
    `adaptive` lets the model decide how much to think (`effort` steers it)."""
    thinking_budget: int = 2048
    refine_temperature: float | None = None
    """Temperature from round 2 on (refinement usually wants less randomness); None keeps `temperature`."""
    refine_max_tokens: int | None = None
    timeout: float = 120.0
    """Seconds one HTTP request may take."""
    max_retries: int = 4
    """The SDK's retries of connection errors, 429 and 5xx."""
    overloaded_retries: int = 4
    """Our retries of an `overloaded_error` event inside a 200 stream (the SDK retries HTTP 529 itself)."""
    overloaded_backoff: float = 1.0
    """First delay (seconds) before retrying an overloaded stream; doubles per attempt."""
    outage_limit: float = 8 * 3600.0
    """Seconds a call keeps waiting through an API outage (every retry failed) before its task
    ends `failed` with the API's last message; the task's own time budget bounds it too."""
    outage_backoff: float = 5.0
    """First wait (seconds) of an outage; doubles per failed call, up to `outage_max_delay`."""
    outage_max_delay: float = 300.0
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


class ClaudeConfigError(ClaudeFatal):
    """An option the model (or the API version the SDK speaks) refuses; `field` names it."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class ClaudeOutage(ClaudeFatal):
    """Claude stayed unavailable past `outage_limit` or the task's time budget: the task ends
    `failed` with the API's last message."""


class ClaudeUnavailable(Exception):
    """One call failed after every retry (connection lost, 5xx, 529, a long `retry-after`).
    Not a `ReverieError`: `Claude.create` waits it out (the outage policy); `retry_after` is the
    server's word on when to come back, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _key_hint(options: ClaudeOptions) -> str:
    return (f"set {options.api_key_env} to an Anthropic API key (https://console.anthropic.com/settings/keys), "
            f"or name another variable with api_key_env")


def check_options(options: ClaudeOptions) -> None:
    """Config-time checks, so a request the API would refuse is a config error at `reverie up`
    naming the field (`ClaudeConfigError`), not a 400 in round 2. A missing key is one line too."""
    if not os.environ.get(options.api_key_env):
        raise ClaudeFatal(f"{options.api_key_env} is not set: {_key_hint(options)}")
    for name in ("max_tokens", "concurrency", "timeout"):
        if getattr(options, name) <= 0:
            raise ClaudeConfigError(name, "must be positive")
    if options.memory_tool and options.mode == "batch":
        raise ClaudeConfigError("memory_tool", "needs mode = \"sync\": a batch cannot run a tool loop")
    rules = rules_for(options.model)
    for name in ("temperature", "refine_temperature"):
        if getattr(options, name) is None:
            continue
        if not SAMPLING_API:
            raise ClaudeConfigError(name, f"Messages API version {API_VERSION} (the one the installed anthropic "
                                          f"SDK speaks) takes no sampling parameters; use effort instead")
        if not rules.sampling:
            raise ClaudeConfigError(name, f"{options.model} takes no temperature; use effort instead")
    wanted = _THINKING_TYPE[options.thinking]
    if wanted is not None and wanted not in rules.thinking:
        raise ClaudeConfigError("thinking", f"{options.model} does not accept thinking = \"{options.thinking}\" "
                                            f"(it takes {_accepted_thinking(rules)})")
    if options.thinking == "enabled":
        if options.thinking_budget < 1024:
            raise ClaudeConfigError("thinking_budget", "must be at least 1024")
        for name in ("max_tokens", "refine_max_tokens"):
            limit = getattr(options, name)
            if limit is not None and limit <= options.thinking_budget:
                raise ClaudeConfigError(name, f"must be above thinking_budget ({options.thinking_budget}): "
                                              f"thinking counts toward it")
    for name in ("effort", "refine_effort"):
        effort = getattr(options, name)
        if effort is None:
            continue
        if not rules.efforts:
            raise ClaudeConfigError(name, f"{options.model} takes no effort parameter")
        if effort not in rules.efforts:
            raise ClaudeConfigError(name, f"{options.model} takes effort {', '.join(rules.efforts)}, not {effort}")
        if options.thinking == "off" and rules.off is not None and effort not in rules.off_efforts:
            raise ClaudeConfigError(name, f"{options.model} needs thinking on at effort {effort}: set thinking = "
                                          f"\"adaptive\" or effort at most {rules.off_efforts[-1]}")
    if options.thinking == "off" and rules.off is None and options.model not in _said_always_on:
        _said_always_on.add(options.model)
        log.warning("thinking = \"off\": %s always thinks (adaptive) and cannot turn it off; effort = \"low\" "
                    "keeps it short", options.model)


_THINKING_TYPE: dict[str, ThinkingType | None] = {"off": None, "enabled": "enabled", "adaptive": "adaptive"}
_said_always_on: set[str] = set()


def _accepted_thinking(rules: ModelRules) -> str:
    names = {"enabled": "enabled", "adaptive": "adaptive", "disabled": "off", "between_tools": "off"}
    return " or ".join(sorted({f'"{names[t]}"' for t in rules.thinking}))


def price_of(options: ClaudeOptions) -> Price | None:
    table = DEFAULT_PRICES | options.prices
    entry = model_entry(options.model, table)
    return table[entry] if entry is not None else None


def cost_of(usage: Any, price: Price | None, *, batched: bool) -> float | None:
    """USD for one response's `usage` (an SDK `Usage` or anything with its token fields; a
    `cache_creation` breakdown prices 1-hour writes at their own rate)."""
    if price is None:
        return None
    write = price.cache_write if price.cache_write is not None else price.input * 1.25
    write_1h = price.cache_write_1h if price.cache_write_1h is not None else price.input * 2.0
    read = price.cache_read if price.cache_read is not None else price.input * 0.1
    fresh, out = usage.input_tokens or 0, usage.output_tokens or 0
    written = getattr(usage, "cache_creation_input_tokens", 0) or 0
    cached = getattr(usage, "cache_read_input_tokens", 0) or 0
    split = getattr(usage, "cache_creation", None)
    hour = min((getattr(split, "ephemeral_1h_input_tokens", 0) or 0) if split is not None else 0, written)
    total = (fresh * price.input + out * price.output + (written - hour) * write + hour * write_1h
             + cached * read) / 1e6
    if price.long_prompt_tokens is not None and fresh + written + cached > price.long_prompt_tokens:
        total *= price.long_prompt_factor
    return total * (price.batch_discount if batched else 1.0)


_semaphores: dict[tuple[int, str], asyncio.Semaphore] = {}


def _semaphore(model: str, limit: int) -> asyncio.Semaphore:
    """One per event loop and model, so every component of a process shares the limit."""
    key = (id(asyncio.get_running_loop()), model)
    sem = _semaphores.get(key)
    if sem is None:
        sem = _semaphores[key] = asyncio.Semaphore(limit)
    return sem


SPEND_LIMITS = ("enforced_spend_limit_reached", "contract_spend_limit_reached")
"""429s that only a new month or a new contract ends: the SDK would retry them like any 429."""


def _spend_limit(status: int, body: bytes) -> ClaudeFatal | None:
    if status != 429:
        return None
    try:
        error = json.loads(body).get("error") or {}
        code = (error.get("details") or {}).get("error_code")
    except (ValueError, AttributeError):
        return None
    if code not in SPEND_LIMITS:
        return None
    return ClaudeFatal(f"Anthropic spend limit reached (429 {code}): {error.get('message', '')}; not retrying")


def _retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers.get(name)) / scale
        except (TypeError, ValueError):
            continue
    return None


class _Guard:
    """SDK middleware, run on every HTTP attempt inside the SDK's retry loop. A spend limit
    stops the retries at once (middleware exceptions propagate without retries); a
    `retry-after` longer than `patience` (the request timeout) is not slept through by the SDK
    but handed to the outage policy, which honours it only within the task's budget."""

    def __init__(self, patience: float) -> None:
        self.patience = patience

    def _check(self, response: Any, body: bytes) -> None:
        fatal = _spend_limit(response.status_code, body)
        if fatal is not None:
            raise fatal
        wait = _retry_after(response.headers)
        if response.status_code in (408, 409, 429) or response.status_code >= 500:
            if wait is not None and wait > self.patience:
                raise ClaudeUnavailable(f"HTTP {response.status_code}: retry after {wait:g}s", retry_after=wait)

    async def handle_async(self, request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        if not response.http_response.is_success:
            self._check(response, await response.read())
        return response

    def handle_sync(self, request: Any, call_next: Any) -> Any:
        response = call_next(request)
        if not response.http_response.is_success:
            self._check(response, response.read())
        return response


def client_kwargs(options: ClaudeOptions, *, api_key: str | None = None, sync: bool = False) -> dict[str, Any]:
    """What every reverie Anthropic client is built with: the key from `api_key_env`, the
    base URL, timeout and retries of the options, and the guard middleware."""
    key = api_key or os.environ.get(options.api_key_env)
    if not key:
        raise ClaudeFatal(f"{options.api_key_env} is not set: {_key_hint(options)}")
    guard = _Guard(options.timeout)
    return {"api_key": key, "base_url": options.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            "timeout": options.timeout, "max_retries": options.max_retries,
            "middleware": [guard.handle_sync if sync else guard.handle_async]}


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
    if status == 429 and exc.error_code in SPEND_LIMITS:
        return ClaudeFatal(f"Anthropic spend limit reached (429 {exc.error_code}): {message}")
    if status == 400:
        lowered = message.lower()
        if "usage limits" in lowered or "credit balance" in lowered or "spend limit" in lowered:
            return ClaudeFatal(f"Anthropic spend limit reached: {message}")
        return ClaudeFatal(f"Anthropic rejected the request (400 {exc.type or 'invalid_request_error'}): {message}")
    if status in (404, 413):
        return ClaudeFatal(f"Anthropic rejected the request ({status} {exc.type}): {message}")
    return None


def _in_stream(exc: anthropic.APIStatusError) -> bool:
    """An `error` event inside a 200 stream (the SDK raises it from the 200 response and never
    retries it), as opposed to an HTTP error status, which the SDK has already retried."""
    return exc.response.status_code == 200


class Claude:
    """A client for one component. `create` streams a message (so long outputs never hit the
    non-streaming limit) and returns it with its `Usage`; `submit_batch`/`poll_batch` run
    the Message Batches API. Use it as `async with Claude(options) as claude:`."""

    def __init__(self, options: ClaudeOptions, *, api_key: str | None = None) -> None:
        self.options = options
        self.rules = rules_for(options.model)
        self.price = price_of(options)
        if self.price is None:
            _say_unpriced(options.model)
        self.client = anthropic.AsyncAnthropic(**client_kwargs(options, api_key=api_key))

    async def __aenter__(self) -> Claude:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
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
                async with _semaphore(self.options.model, self.options.concurrency):
                    async with self.client.messages.stream(**_sdk_kwargs(params)) as stream:
                        message = await stream.get_final_message()
                if message.stop_reason is None:  # the stream ended without message_delta: a dropped connection
                    raise ClaudeUnavailable("the connection dropped mid-stream (no stop_reason: the answer is incomplete)")
                return message, self.usage(message.usage, batched=False)
            except anthropic.APIStatusError as exc:
                fatal = fatal_error(exc, self.options)
                if fatal is not None:
                    raise fatal from None
                if not _in_stream(exc) or exc.type != "overloaded_error":
                    raise ClaudeUnavailable(f"{exc.status_code} {exc.type or 'error'}: {exc.api_message or exc}",
                                            retry_after=_retry_after(exc.response.headers)) from exc
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


def usage_of(usage: Any, price: Price | None, model: str, *, batched: bool) -> Usage:
    """Our `Usage` of one response's SDK usage, priced (`unpriced` names a model without a price)."""
    return Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0,
                 cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
                 cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
                 requests=1, batched=int(batched), cost_usd=cost_of(usage, price, batched=batched) or 0.0,
                 unpriced=() if price is not None else (model,))


_said_unpriced: set[str] = set()


def _say_unpriced(model: str) -> None:
    if model not in _said_unpriced:
        _said_unpriced.add(model)
        log.warning("no price for model %s: costs are not reported (add it under `prices` in the config)", model)


def _sdk_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """This SDK's `messages.stream` has no `temperature` argument; under an API version that
    takes one (for a model that does), it travels in the body."""
    kwargs = dict(params)
    if "temperature" in kwargs:
        kwargs["extra_body"] = {**kwargs.get("extra_body", {}), "temperature": kwargs.pop("temperature")}
    return kwargs
