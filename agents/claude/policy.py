"""Failure policy below the `Claude` client: which API errors are fatal, the SDK middleware
that stops retries the SDK should not make, the client's construction, and the per-model
concurrency limit."""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

import anthropic

from .errors import ClaudeFatal, ClaudeUnavailable, key_hint

if TYPE_CHECKING:
    from .options import ClaudeOptions

__all__ = ["SPEND_LIMITS", "client_kwargs", "fatal_error", "in_stream", "retry_after", "semaphore"]


_semaphores: dict[tuple[int, str], asyncio.Semaphore] = {}


def semaphore(model: str, limit: int) -> asyncio.Semaphore:
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


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `retry-after`), if it said."""
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
        wait = retry_after(response.headers)
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
        raise ClaudeFatal(f"{options.api_key_env} is not set: {key_hint(options.api_key_env)}")
    guard = _Guard(options.timeout)
    return {"api_key": key, "base_url": options.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            "timeout": options.timeout, "max_retries": options.max_retries,
            "middleware": [guard.handle_sync if sync else guard.handle_async]}


def fatal_error(exc: anthropic.APIStatusError, options: ClaudeOptions) -> ClaudeFatal | None:
    """The `ClaudeFatal` an API error amounts to, or None when retrying later may help."""
    message = exc.api_message or str(exc)
    status = exc.status_code
    if status == 401:
        return ClaudeFatal(f"Anthropic refused the API key (401 authentication_error: {message}): "
                           f"{key_hint(options.api_key_env)}")
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


def in_stream(exc: anthropic.APIStatusError) -> bool:
    """An `error` event inside a 200 stream (the SDK raises it from the 200 response and never
    retries it), as opposed to an HTTP error status, which the SDK has already retried."""
    return exc.response.status_code == 200
