"""A fake Anthropic Messages API on loopback, for tests and benchmarks.

What it fakes: a real HTTP server that the unpatched `anthropic` SDK talks to
(`AsyncAnthropic(base_url=fake.url, api_key=...)`): `POST /v1/messages` (JSON and SSE
streaming), `POST /v1/messages/count_tokens`, the Message Batches API (create, retrieve,
list, cancel, delete, JSONL results), the error body shape, API-key auth, prompt caching,
refusals (`stop_reason: "refusal"` with `stop_details`), tool calls cut off at `max_tokens`,
and the per-model request rules below. Responses are scripted (`fake.script(...)`, then
`fake.responder`) and every request is recorded (`fake.requests`), every successful reply's
usage too (`fake.usage_log`), every batch cancel (`fake.cancels`).

What it does not: there is no model (replies are exactly what the test scripts), and token
counts are an approximation by rule, not a tokenizer:

* tokens of a block = ceil(len(canonical JSON of the block, minus `cache_control`) / 4),
  where canonical JSON = `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`;
* the prompt is the block sequence tools -> system blocks -> message content blocks (a string
  `system` or message `content` is one text block); input = sum over that sequence;
* output tokens = ceil(len(canonical JSON of the reply's content list) / 4).

Prompt caching follows the API's rules on that sequence: breakpoints are the blocks carrying
`cache_control` (at most 4, else 400; a top-level `cache_control` marks the last block). A
prefix (hash of the model and every block up to a breakpoint) below the minimum cacheable
length is neither read nor written, and that is no error (the minimum is the model's
`MODEL_RULES[...].min_cache`, or `min_cache_tokens` for every model when set). The longest
cached prefix ending at a breakpoint or up to 19 blocks before one is read
(`cache_read_input_tokens`, its TTL refreshed); the tokens from there to the last breakpoint
are written (`cache_creation_input_tokens`, split by TTL 5m / 1h in `cache_creation`); the rest
is `input_tokens`. TTLs run on `fake.clock` (monotonic by default).

Per-model rules (`MODEL_RULES`, a reading of Anthropic's docs as of 2026-12, independent of the
project's client; PCD = https://platform.claude.com/docs/en/). They are checked before any
scripted action is consumed, on `POST /v1/messages`, on each batch entry's params when the
batch ends (a broken rule makes the entry `errored` with the same error) and, where noted, on
`count_tokens`. Every refusal is a 400 `invalid_request_error` unless said otherwise:

* model: matched exactly or as a dated snapshot (`claude-haiku-4-5-20251001`; the longest id
  followed by `-`). Unknown -> 404 `not_found_error` `model: <id>` (also count_tokens), unless
  `strict_models=False`, where an unknown model passes with no rule checked.
* `anthropic-version` 2026-10-21 or later (what the SDK 2.x sends): `temperature`, `top_p`,
  `top_k` at any value on every model -> `temperature: Extra inputs are not permitted` (also
  count_tokens and batches). PCD `api/migration-2026-10-21`.
* forced `tool_choice` (`any` / `tool`) on Fable/Mythos 5.1 and 5.2, Opus 5.5, Sonnet 5.5 ->
  `tool_choice: type "tool" and "any" are not supported for this model.` (also count_tokens).
  PCD `models/fable-5-1/whats-new-fable-5-1`, `models/opus-5-5/whats-new-opus-5-5`,
  `models/sonnet-5-5/whats-new-sonnet-5-5`. On the 4.x models (thinking off by default), forcing
  with `thinking` enabled/adaptive in the request -> `Thinking may not be enabled when
  tool_choice forces tool use.` (docs.anthropic.com extended-thinking, quoted in llama_index#19641).
* `thinking.type` the model does not take -> `"thinking.type.disabled" is not supported for this
  model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.`
  (Sonnet 5.5: pointing to `between_tools`); `disabled` / `between_tools` (or no `thinking` on
  a model that does not think by default) at an effort the model refuses then (Opus 5, Haiku
  5.5, Sonnet 5.5: xhigh, max; Opus 4.8: xhigh). `enabled` needs 1024 <= budget_tokens <
  max_tokens (the latter not with tools and the interleaved-thinking beta). PCD
  `build-with-claude/thinking-troubleshooting`, `build-with-claude/extended-thinking`, the model pages.
* sampling under older `anthropic-version`s: a non-default `temperature` (1) / `top_p` (0.99) /
  any `top_k` on the models that fix them -> `` `temperature` is deprecated for this model. ``;
  `temperature` with `top_p` there and on Sonnet 4.5 -> `temperature and top_p cannot both be
  specified for this model.`; on the others with thinking on: temperature only 1, top_p only
  0.95-1, no top_k. PCD `models/sonnet-5/overview`, `models/haiku-5-5/overview`, `build-with-claude/extended-thinking`.
* `output_config.effort` on Sonnet 4.5 / Haiku 4.5 -> `This model does not support the effort
  parameter.`; a level the model lacks (xhigh on Opus 4.6, Sonnet 4.6, Opus 4.5) -> 400; a
  top-level `effort` -> `effort: Extra inputs are not permitted`. PCD `build-with-claude/effort`.
* assistant prefill (the last message is the assistant's) on 4.6 and later -> `This model does
  not support assistant message prefill. The conversation must end with a user message.`
  PCD `about-claude/models/whats-new-claude-4-6#prefill-removal`.
* minimum cacheable prompt 512 / 1024 / 2048 / 4096 per model (Fable/Mythos 5.2: 512, inferred).
  PCD `build-with-claude/prompt-caching#cache-limitations`.
* refusals are HTTP 200 (`Reply.refusal`), `stop_details` on every message (null unless set),
  on `message_delta` when streaming. PCD `build-with-claude/refusals-and-fallback`,
  `build-with-claude/handling-stop-reasons`.
* batch cancel: entries not yet answered end `canceled`; entries answered before the cancel
  (`fake.run_entries`) keep their result. PCD `api/canceling-message-batches`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import signal
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from jiter import from_json  # an `anthropic` dependency

__all__ = [
    "ALL_EFFORTS",
    "FORCED_TOOL",
    "FORCED_WITH_THINKING",
    "MODEL_RULES",
    "NEW_API_VERSION",
    "NO_EFFORT",
    "NO_XHIGH",
    "PREFILL",
    "REFUSAL_EXPLANATION",
    "SAMPLING_PAIR",
    "UP_TO_HIGH",
    "Action",
    "Batch",
    "Drop",
    "Expire",
    "FakeAnthropic",
    "Hang",
    "HttpError",
    "ModelRules",
    "Recorded",
    "Reply",
    "StreamError",
    "check_request",
    "fake_anthropic",
    "main",
    "model_rules",
    "partial_input",
]


REFUSAL_EXPLANATION = "This request was declined because it could enable cyber harm."
"""The explanation in the official refusal example (PCD `build-with-claude/refusals-and-fallback`)."""


@dataclass
class Reply:
    """A normal message. Missing `tool_use` ids are filled in; `usage` keys override the computed ones.

    `stop_details` becomes the message's `stop_details` (on `message_delta` when streaming).
    `partial_json`, if set, is what the stream sends as the last block's `input_json_delta`s
    (a tool call cut off mid-JSON); that block's `input` is what a non-streaming reply carries."""
    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    usage: dict[str, Any] | None = None
    stop_details: dict[str, Any] | None = None
    partial_json: str | None = None

    @classmethod
    def text(cls, text: str) -> Reply:
        return cls([{"type": "text", "text": text}])

    @classmethod
    def tool(cls, name: str, input: dict[str, Any]) -> Reply:
        return cls.tools(name, [input])

    @classmethod
    def tools(cls, name: str, inputs: list[dict[str, Any]]) -> Reply:
        return cls([{"type": "tool_use", "name": name, "input": i} for i in inputs], "tool_use")

    @classmethod
    def refusal(cls, category: str | None = "cyber", explanation: str | None = REFUSAL_EXPLANATION,
                text: str = "") -> Reply:
        """HTTP 200, `stop_reason: "refusal"`, `stop_details: {type: refusal, category, explanation}`;
        `text` is output given before the classifier stepped in (none: `content: []`)."""
        return cls([{"type": "text", "text": text}] if text else [], "refusal",
                   stop_details={"type": "refusal", "category": category, "explanation": explanation})

    @classmethod
    def truncated_tool(cls, name: str, complete_inputs: list[dict[str, Any]], partial_json: str, *,
                       stop_reason: str = "max_tokens") -> Reply:
        """`complete_inputs` as whole tool calls, then one more call to `name` cut off after
        `partial_json` (e.g. `'{"steps": ["a", "b"'`, not valid JSON), stopped by `stop_reason`
        (`max_tokens` or `model_context_window_exceeded`). Streaming sends exactly `partial_json`
        as that block's input deltas; a non-streaming reply carries it parsed as far as it goes
        (`partial_input`)."""
        blocks = [{"type": "tool_use", "name": name, "input": i} for i in complete_inputs]
        blocks.append({"type": "tool_use", "name": name, "input": partial_input(partial_json)})
        return cls(blocks, stop_reason, partial_json=partial_json)


def partial_input(partial_json: str) -> Any:
    """A cut-off JSON text parsed as far as it goes: every complete value is kept, a cut-off
    string, number or literal (and its key) is dropped, open arrays and objects are closed.
    That is jiter's `partial_mode=True`, which the SDK's stream accumulator uses, so a streamed
    and a non-streamed truncated call agree; without jiter, or for text that is not a prefix of
    JSON, `{}`."""
    if not partial_json:
        return {}
    try:
        return from_json(partial_json.encode(), partial_mode=True)
    except ValueError:
        return {}


@dataclass
class HttpError:
    """An HTTP error response; `details` becomes `error.details` (the SDK picks a subclass by its `error_code`)."""
    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] | None = None


@dataclass
class StreamError:
    """Streaming: HTTP 200, `after_blocks` complete blocks of `reply`, the next block begun, then `event: error`.

    Non-streaming: HTTP 529 with `error_type`. In a batch: an `errored` entry."""
    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    after_blocks: int = 0
    reply: Reply | None = None


@dataclass
class Hang:
    """Sleep `seconds` (woken by `stop()`), then answer with `then`, or else the responder's action.

    In a batch the sleep is skipped."""
    seconds: float
    then: Action | None = None


@dataclass
class Expire:
    """A batch entry that expired (for a non-batch request: a 500)."""


@dataclass
class Drop:
    """Streaming: HTTP 200, `after_blocks` complete blocks of `reply` and the start of the next,
    then the connection closes with no `message_stop` (a network drop mid-stream). Non-streaming:
    the connection closes before any response."""
    after_blocks: int = 0
    reply: Reply | None = None


Action = Reply | HttpError | StreamError | Hang | Expire | Drop | Callable[[dict[str, Any]], "Action"]
_ACTION_TYPES = (Reply, HttpError, StreamError, Hang, Expire, Drop)


@dataclass
class Recorded:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    time: float  # time.time() on arrival


@dataclass
class Batch:
    id: str
    requests: list[dict[str, Any]]  # [{"custom_id", "params"}], as sent
    created_at: datetime
    deadline: float | None  # monotonic time at which it ends by itself; None: only end_batch()
    processing_status: str = "in_progress"
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)  # JSONL lines: once ended, or run_entries()
    headers: dict[str, str] = field(default_factory=dict)  # of the create request (anthropic-version, -beta)

    def counts(self) -> dict[str, int]:
        """`request_counts`: `processing` are the entries without a result yet."""
        counts = {k: 0 for k in ("processing", "succeeded", "errored", "canceled", "expired")}
        for r in self.results:
            counts[r["result"]["type"]] += 1
        counts["processing"] = len(self.requests) - len(self.results)
        return counts


class _ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.action = HttpError(status, error_type, message)


# -- per-model rules ---------------------------------------------------------------------------
# A standalone reading of Anthropic's docs (PCD = https://platform.claude.com/docs/en/), not of
# the project's client. "inferred": the docs imply it; "NOT FOUND": nothing said, so the fake is lenient.

_EFFORTS = ("low", "medium", "high", "xhigh", "max")
ALL_EFFORTS = frozenset(_EFFORTS)
NO_XHIGH = frozenset({"low", "medium", "high", "max"})
UP_TO_HIGH = frozenset({"low", "medium", "high"})


@dataclass(frozen=True)
class ModelRules:
    # tool_choice any/tool accepted. Refused on Fable/Mythos 5.1 (PCD models/fable-5-1/whats-new-fable-5-1
    # #forced-tool-use-is-not-supported), Opus 5.5 (models/opus-5-5/whats-new-opus-5-5), Sonnet 5.5
    # (models/sonnet-5-5/whats-new-sonnet-5-5, migration-guide); Fable 5.2 inferred from 5.1.
    forced_tool: bool
    # forcing together with thinking enabled/adaptive in the request: refused on the 4.x models
    # (docs.anthropic.com extended-thinking via llama_index#19641); on 5.x NOT FOUND -> accepted.
    forced_with_thinking: bool
    # thinking.type values accepted (PCD build-with-claude/thinking-troubleshooting; model pages).
    thinking: frozenset[str]
    # the model thinks (adaptive) when `thinking` is omitted; else omitted = disabled.
    thinks_by_default: bool
    # efforts at which thinking may be off (disabled / between_tools); None: any
    # (PCD models/opus-5/overview, models/haiku-5-5/overview, whats-new-sonnet-5-5; Opus 4.8: claude-code#76689).
    off_efforts: frozenset[str] | None
    # non-default temperature/top_p and any top_k accepted (API versions before 2026-10-21).
    # Refused per PCD models/sonnet-5/overview, models/haiku-5-5/overview, the thinking docs' list.
    sampling: bool
    # temperature with top_p refused (Sonnet 4.5: open-webui/functions#9; the sampling-fixed models even at defaults).
    sampling_exclusive: bool
    # output_config.effort values (PCD build-with-claude/effort); empty: no effort parameter.
    efforts: frozenset[str]
    default_effort: str | None  # the API's default (model overviews), used by off_efforts
    # a last assistant message (prefill) accepted; removed on 4.6 and later
    # (PCD about-claude/models/whats-new-claude-4-6#prefill-removal).
    prefill: bool
    # minimum cacheable prompt (PCD build-with-claude/prompt-caching#cache-limitations).
    min_cache: int
    # the text after `"thinking.type.disabled" is not supported for this model.`
    disabled_hint: str | None = None


_ADAPTIVE_ONLY = frozenset({"adaptive"})
# Fable 5.1 / Mythos 5.1: forced tool use 400 (also count_tokens), adaptive only, always on
# (AWS Bedrock "Adaptive thinking"; PCD whats-new-opus-5-5 "also apply on Fable 5.1"), sampling fixed,
# effort low-max default high, prefill 400, min cache 512.
_FABLE_5_1 = ModelRules(forced_tool=False, forced_with_thinking=True, thinking=_ADAPTIVE_ONLY, thinks_by_default=True,
                        off_efforts=None, sampling=False, sampling_exclusive=True, prefill=False, min_cache=512,
                        efforts=ALL_EFFORTS, default_effort="high")
# Fable 5 / Mythos 5: as 5.1 but forcing accepted (its refusal is new in 5.1: inferred).
_FABLE_5 = ModelRules(forced_tool=True, forced_with_thinking=True, thinking=_ADAPTIVE_ONLY, thinks_by_default=True,
                      off_efforts=None, sampling=False, sampling_exclusive=True, prefill=False, min_cache=512,
                      efforts=ALL_EFFORTS, default_effort="high")
# Opus 4.8: adaptive or disabled (enabled 400), off by default; xhigh needs thinking on; sampling fixed; min 1024.
_OPUS_4_8 = ModelRules(forced_tool=True, forced_with_thinking=False, thinking=frozenset({"adaptive", "disabled"}),
                       thinks_by_default=False, off_efforts=frozenset({"low", "medium", "high", "max"}),
                       sampling=False, sampling_exclusive=True, prefill=False, min_cache=1024,
                       efforts=ALL_EFFORTS, default_effort="high")
# Opus 4.6 / Sonnet 4.6: adaptive, enabled (deprecated), disabled; off by default; sampling free with
# thinking off; effort low/medium/high/max (no xhigh); prefill 400.
_CLAUDE_4_6 = ModelRules(forced_tool=True, forced_with_thinking=False,
                         thinking=frozenset({"adaptive", "enabled", "disabled"}), thinks_by_default=False,
                         off_efforts=None, sampling=True, sampling_exclusive=False, efforts=NO_XHIGH,
                         default_effort="high", prefill=False, min_cache=4096)
# Opus 4.5 / Sonnet 4.5 / Haiku 4.5: extended thinking (enabled + budget) only, prefill supported.
_CLAUDE_4_5 = ModelRules(forced_tool=True, forced_with_thinking=False, thinking=frozenset({"enabled", "disabled"}),
                         thinks_by_default=False, off_efforts=None, sampling=True, sampling_exclusive=False,
                         efforts=frozenset(), default_effort=None, prefill=True, min_cache=4096)

MODEL_RULES: dict[str, ModelRules] = {
    # Fable 5.2 / Mythos 5.2: PCD models/fable-5-2/whats-new-fable-5-2 lists no change to these from 5.1
    # (inferred; dev.to akaranjkar08 says so); min cache NOT FOUND: 512 inferred.
    "claude-fable-5-2": _FABLE_5_1,
    "claude-mythos-5-2": _FABLE_5_1,
    "claude-fable-5-1": _FABLE_5_1,
    "claude-mythos-5-1": _FABLE_5_1,  # same specs as Fable 5.1 (PCD models/overview)
    "claude-fable-5": _FABLE_5,
    "claude-mythos-5": _FABLE_5,
    # Opus 5.5: forced tool 400, adaptive only (disabled/enabled 400, PCD models/opus-5-5/whats-new-opus-5-5),
    # sampling fixed, effort low-max default medium, prefill 400, min 512.
    "claude-opus-5-5": replace(_FABLE_5_1, default_effort="medium"),
    # Opus 5: adaptive on by default, disabled only at effort high or below (PCD models/opus-5/overview),
    # enabled 400, forcing accepted (implied), min 512.
    "claude-opus-5": replace(_FABLE_5, thinking=frozenset({"adaptive", "disabled"}), off_efforts=UP_TO_HIGH),
    # Sonnet 5.5: forced tool 400; between_tools instead of disabled, at low/medium/high only
    # (PCD models/sonnet-5-5/whats-new-sonnet-5-5 #turn-off-up-front-thinking); min 512.
    "claude-sonnet-5-5": replace(
        _FABLE_5_1, thinking=frozenset({"adaptive", "between_tools"}), off_efforts=UP_TO_HIGH,
        disabled_hint='To turn off up-front thinking, send "thinking": {"type": "between_tools"} instead of '
                      '{"type": "disabled"} (at effort low, medium or high).'),
    # Sonnet 5: adaptive by default, enabled 400 (PCD models/sonnet-5/overview); disabled NOT FOUND
    # (accepted at any effort); sampling fixed; min 1024.
    "claude-sonnet-5": replace(_FABLE_5, thinking=frozenset({"adaptive", "disabled"}), min_cache=1024),
    # Haiku 5.5: forcing accepted (pricing page lists any/tool overhead: inferred); disabled only at
    # high or below (PCD models/haiku-5-5/overview); sampling fixed; effort default medium; prefill 400; min 512.
    "claude-haiku-5-5": replace(_FABLE_5, thinking=frozenset({"adaptive", "disabled"}), off_efforts=UP_TO_HIGH,
                                default_effort="medium"),
    "claude-opus-4-8": _OPUS_4_8,
    # Opus 4.7: as Opus 4.8 (inferred), no stated effort limit with thinking off; min 2048.
    "claude-opus-4-7": replace(_OPUS_4_8, off_efforts=None, min_cache=2048),
    # Mythos Preview: thinks by default (PCD build-with-claude/thinking, quoted in checkmarble/llmberjack#14),
    # sampling fixed (thinking docs' list), min 2048; thinking types and xhigh NOT FOUND (all accepted).
    "claude-mythos-preview": replace(_OPUS_4_8, thinking=frozenset({"adaptive", "enabled", "disabled"}),
                                     thinks_by_default=True, forced_with_thinking=True, off_efforts=None,
                                     min_cache=2048),
    "claude-opus-4-6": _CLAUDE_4_6,  # min 4096
    "claude-sonnet-4-6": replace(_CLAUDE_4_6, min_cache=1024),  # 1024 official (one 3p says 2048)
    # Opus 4.5: effort low/medium/high (max: conflicting 3p sources, accepted), min 4096.
    "claude-opus-4-5": replace(_CLAUDE_4_5, efforts=NO_XHIGH, default_effort="high"),
    # Sonnet 4.5: no effort; temperature + top_p together 400 (open-webui/functions#9); min 1024.
    "claude-sonnet-4-5": replace(_CLAUDE_4_5, sampling_exclusive=True, min_cache=1024),
    "claude-haiku-4-5": _CLAUDE_4_5,  # no effort, min 4096
}

NEW_API_VERSION = "2026-10-21"  # from here on, no sampling parameters at all (PCD api/migration-2026-10-21)
FORCED_TOOL = 'tool_choice: type "tool" and "any" are not supported for this model.'
FORCED_WITH_THINKING = "Thinking may not be enabled when tool_choice forces tool use."
PREFILL = "This model does not support assistant message prefill. The conversation must end with a user message."
NO_EFFORT = "This model does not support the effort parameter."
SAMPLING_PAIR = "temperature and top_p cannot both be specified for this model."
_SAMPLING = ("temperature", "top_p", "top_k")
_SAMPLING_DEFAULTS: dict[str, float | None] = {"temperature": 1.0, "top_p": 0.99, "top_k": None}  # top_p: [3p]


def model_rules(model: str) -> ModelRules | None:
    """The rules of `model`: its exact id, else the longest id it extends by `-...` (a dated snapshot)."""
    if model in MODEL_RULES:
        return MODEL_RULES[model]
    ids = [m for m in MODEL_RULES if model.startswith(m + "-")]
    return MODEL_RULES[max(ids, key=len)] if ids else None


def _bad(message: str) -> _ApiError:
    return _ApiError(400, "invalid_request_error", message)


def check_request(body: dict[str, Any], headers: dict[str, str], *, strict: bool,
                  endpoint: str = "messages") -> ModelRules | None:
    """Raise the API's error for a request that breaks a rule; return the model's rules (None:
    unknown model, let through as `strict` is False). `endpoint` "count_tokens" checks only the
    model, the API version's sampling ban and forced tool choice."""
    model = body.get("model")
    if not isinstance(model, str):
        if strict:
            raise _bad("model: Field required")
        return None
    rules = model_rules(model)
    if rules is None:
        if strict:
            raise _ApiError(404, "not_found_error", f"model: {model}")
        return None
    version = headers.get("anthropic-version") or "2023-06-01"
    present = [p for p in _SAMPLING if body.get(p) is not None]
    if present and version >= NEW_API_VERSION:
        raise _bad(f"{present[0]}: Extra inputs are not permitted")
    choice = body.get("tool_choice")
    forced = isinstance(choice, dict) and choice.get("type") in ("any", "tool")
    if forced and not rules.forced_tool:
        raise _bad(FORCED_TOOL)
    if endpoint == "count_tokens":
        return rules

    if "effort" in body:
        raise _bad("effort: Extra inputs are not permitted")
    output_config = body.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if effort is not None:
        if not rules.efforts:
            raise _bad(NO_EFFORT)
        if effort not in _EFFORTS:
            raise _bad("output_config.effort: Input should be " + ", ".join(f"'{e}'" for e in _EFFORTS))
        if effort not in rules.efforts:
            raise _bad(f"output_config.effort '{effort}' is not supported for this model. Supported values: "
                       + ", ".join(f"'{e}'" for e in _EFFORTS if e in rules.efforts) + ".")

    thinking = body.get("thinking")
    thinking = thinking if isinstance(thinking, dict) else {}
    asked = thinking.get("type")
    if asked is not None:
        if asked not in ("enabled", "adaptive", "disabled", "between_tools"):
            raise _bad(f"thinking.type: Input tag '{asked}' does not match any of the expected tags: "
                       "'enabled', 'adaptive', 'disabled', 'between_tools'")
        if asked not in rules.thinking:
            hint = rules.disabled_hint if asked == "disabled" and rules.disabled_hint else (
                'Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
                if "adaptive" in rules.thinking else 'Use "thinking.type.enabled" with "budget_tokens".')
            raise _bad(f'"thinking.type.{asked}" is not supported for this model. {hint}')
        if asked == "enabled":
            budget, max_tokens = thinking.get("budget_tokens"), body.get("max_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise _bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            interleaved = "interleaved-thinking" in headers.get("anthropic-beta", "") and body.get("tools")
            if isinstance(max_tokens, int) and budget >= max_tokens and not interleaved:
                raise _bad("`max_tokens` must be greater than `thinking.budget_tokens`.")
        elif "budget_tokens" in thinking:
            raise _bad(f"thinking.{asked}.budget_tokens: Extra inputs are not permitted")
    effective = asked or ("adaptive" if rules.thinks_by_default else "disabled")
    thinking_on = effective in ("enabled", "adaptive")
    level = effort or rules.default_effort
    if not thinking_on and rules.off_efforts is not None and level is not None and level not in rules.off_efforts:
        if effective == "between_tools":
            raise _bad(f"output_config.effort '{level}' is not supported with thinking.type 'between_tools'. "
                       "Use effort 'high' or below, or adaptive thinking.")
        raise _bad(f"output_config.effort '{level}' is not supported when thinking is disabled on this model. "
                   "Use effort 'high' or below, or enable thinking.")

    if forced and asked in ("enabled", "adaptive") and not rules.forced_with_thinking:
        raise _bad(FORCED_WITH_THINKING)

    if "temperature" in present and "top_p" in present and rules.sampling_exclusive:
        raise _bad(SAMPLING_PAIR)
    for p in present:
        value = body[p]
        if not rules.sampling and value != _SAMPLING_DEFAULTS[p]:
            raise _bad(f"`{p}` is deprecated for this model.")
        if rules.sampling and thinking_on:
            if p == "temperature" and value != 1:
                raise _bad("temperature may only be set to 1 when thinking is enabled or in adaptive mode.")
            if p == "top_p" and not 0.95 <= value <= 1:
                raise _bad("top_p must be between 0.95 and 1 when thinking is enabled or in adaptive mode.")
            if p == "top_k":
                raise _bad("top_k is not supported when thinking is enabled or in adaptive mode.")

    messages = body.get("messages")
    if (not rules.prefill and isinstance(messages, list) and messages and isinstance(messages[-1], dict)
            and messages[-1].get("role") == "assistant"):
        raise _bad(PREFILL)
    return rules


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _tokens(value: Any) -> int:
    return math.ceil(len(_canon(value)) / 4)


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _rfc3339(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def _ttl(cache_control: Any) -> float:
    return 3600.0 if isinstance(cache_control, dict) and cache_control.get("ttl") == "1h" else 300.0


def _chunks(s: str, n: int) -> list[str]:
    return [s[i:i + n] for i in range(0, len(s), n)] or [""]


def _unscripted(body: dict[str, Any]) -> Action:
    return HttpError(500, "api_error", "unscripted request: FakeAnthropic has no scripted action left "
                     "and no responder set", {"x-should-retry": "false"})


class FakeAnthropic:
    def __init__(self, *, api_key: str | None = None, batch_delay: float | None = 0.0,
                 min_cache_tokens: int | None = None, strict_models: bool = True, port: int = 0) -> None:
        self.api_key = api_key
        self.batch_delay = batch_delay  # read when a batch is created
        self.min_cache_tokens = min_cache_tokens  # None: per model (MODEL_RULES; 0 for an unknown model)
        self.strict_models = strict_models  # False: an unknown model passes, with no rule checked
        self.responder: Callable[[dict[str, Any]], Action] = _unscripted
        self.clock: Callable[[], float] = time.monotonic  # for cache TTLs and batch_delay
        self.requests: list[Recorded] = []
        self.usage_log: list[dict[str, Any]] = []
        self.batches: dict[str, Batch] = {}
        self.cancels: list[str] = []  # batch ids, one per cancel request for an existing batch
        self.errors: list[str] = []  # tracebacks of bugs in the fake itself (answered with a 500)
        self._port = port
        self._script: deque[Action] = deque()
        self._cache: dict[str, tuple[float, float]] = {}  # prefix hash -> (expires, ttl)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # a request was recorded or a batch created
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeAnthropic:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        server = self._server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                                        name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes Hangs
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection ------------------------------------------------------------
    def script(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    def remaining(self) -> int:
        """How many scripted actions are not consumed yet."""
        with self._lock:
            return len(self._script)

    def wait_until(self, check: Callable[[], bool], timeout: float) -> bool:
        """Block until `check()` (run under the fake's lock) holds after a request is recorded or a
        batch created; False after `timeout` seconds. From a test: `await asyncio.to_thread(...)`."""
        with self._changed:
            return self._changed.wait_for(check, timeout)

    def message_requests(self) -> list[Recorded]:
        return [r for r in list(self.requests) if r.method == "POST" and r.path == "/v1/messages"]

    def batch_creates(self) -> list[Recorded]:
        return [r for r in list(self.requests) if r.method == "POST" and r.path == "/v1/messages/batches"]

    def usage_totals(self, *, batch: bool | None = None) -> dict[str, int]:
        """Sums of the token fields of `usage_log` (only batch or only sync entries if `batch` is given)."""
        keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
        with self._lock:
            rows = [u for u in self.usage_log if batch is None or u["batch"] == batch]
        return {k: sum(int(u.get(k) or 0) for u in rows) for k in keys}

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def end_batch(self, batch_id: str) -> Batch:
        """End a batch now: its entries without a result are answered by the script/responder, in
        order (entries that break a rule are `errored` without consuming an action), or, if the
        batch is being canceled, `canceled`."""
        with self._lock:
            b = self.batches[batch_id]
            if b.processing_status != "ended":
                canceled = b.processing_status == "canceling"
                done = {r["custom_id"]: r for r in b.results}
                b.results = [done.get(r["custom_id"]) or
                             {"custom_id": r["custom_id"], "result": {"type": "canceled"} if canceled
                              else self._batch_result(b, r["custom_id"], r["params"])} for r in b.requests]
                b.processing_status, b.ended_at = "ended", datetime.now(UTC)
            return b

    def run_entries(self, batch_id: str, count: int) -> Batch:
        """Answer the next `count` entries of a batch that has not ended, now: requests already
        sent to the model, which a cancel no longer stops (the rest of a canceled batch end `canceled`)."""
        with self._lock:
            b = self.batches[batch_id]
            if b.processing_status == "ended":
                raise ValueError(f"{batch_id} has ended")
            done = {r["custom_id"] for r in b.results}
            for r in [r for r in b.requests if r["custom_id"] not in done][:count]:
                b.results.append({"custom_id": r["custom_id"],
                                  "result": self._batch_result(b, r["custom_id"], r["params"])})
            return b

    def min_cache_for(self, model: Any) -> int:
        """The minimum cacheable prompt for `model`: `min_cache_tokens` if set, else the model's."""
        if self.min_cache_tokens is not None:
            return self.min_cache_tokens
        rules = model_rules(model) if isinstance(model, str) else None
        return rules.min_cache if rules is not None else 0

    # -- actions -----------------------------------------------------------------------------
    def _next_action(self, body: dict[str, Any], *, in_batch: bool = False) -> Action:
        """The next scripted action (else the responder's), callables evaluated and Hangs slept through."""
        with self._lock:
            action: Action = self._script.popleft() if self._script else self.responder
        while True:
            while not isinstance(action, _ACTION_TYPES):
                if not callable(action):
                    raise TypeError(f"not an action: {action!r}")
                action = action(body)
            if not isinstance(action, Hang):
                return action
            if not in_batch and self._stopping.wait(action.seconds):
                raise ConnectionAbortedError("fake stopped during Hang")
            action = action.then if action.then is not None else self.responder

    def _reply_message(self, body: dict[str, Any], reply: Reply, *, commit: bool = True,
                       custom_id: str | None = None) -> dict[str, Any]:
        content = [dict(b) for b in reply.content]
        if reply.partial_json is not None and not (content and content[-1].get("type") == "tool_use"):
            raise TypeError("Reply.partial_json needs a tool_use block last")
        for b in content:
            if b.get("type") in ("tool_use", "server_tool_use") and "id" not in b:
                b["id"] = _new_id("toolu_" if b["type"] == "tool_use" else "srvtoolu_")
            if b.get("type") == "thinking":
                b.setdefault("signature", "fake-signature")
        with self._lock:
            usage = self._input_usage(body, commit=commit)
            usage["output_tokens"] = _tokens(content)
            usage["service_tier"] = "batch" if custom_id is not None else "standard"
            usage.update(reply.usage or {})
            if commit:
                self.usage_log.append({**usage, "batch": custom_id is not None,
                                       **({"custom_id": custom_id} if custom_id is not None else {})})
        return {"id": _new_id("msg_"), "type": "message", "role": "assistant",
                "model": body.get("model", "claude-fake"), "content": content,
                "stop_reason": reply.stop_reason, "stop_sequence": None,
                "stop_details": reply.stop_details, "usage": usage}

    def _batch_result(self, b: Batch, custom_id: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            check_request(params, b.headers, strict=self.strict_models)
            action = self._next_action(params, in_batch=True)
            if isinstance(action, Reply):
                return {"type": "succeeded", "message": self._reply_message(params, action, custom_id=custom_id)}
        except _ApiError as e:
            action = e.action
        if isinstance(action, Expire):
            return {"type": "expired"}
        etype, msg = (action.error_type, action.message) if isinstance(action, (HttpError, StreamError)) \
            else ("api_error", f"unexpected action {action!r}")
        return {"type": "errored", "error": {"type": "error", "error": {"type": etype, "message": msg},
                                             "request_id": _new_id("req_")}}

    # -- the token and cache model -------------------------------------------------------------
    def _prompt(self, body: dict[str, Any]) -> tuple[list[str], list[int], dict[int, float]]:
        """Cumulative prefix hashes and token counts per block, and breakpoint index -> TTL seconds."""
        blocks: list[tuple[str, Any]] = [("tools", t) for t in body.get("tools") or []]
        system = body.get("system")
        if isinstance(system, str):
            blocks.append(("system", {"type": "text", "text": system}))
        elif isinstance(system, list):
            blocks += [("system", b) for b in system]
        for m in body.get("messages") or []:
            c = m.get("content")
            blocks += [(m.get("role", "user"), b) for b in
                       ([{"type": "text", "text": c}] if isinstance(c, str) else c or [])]
        hashes: list[str] = []
        cum: list[int] = []
        bps: dict[int, float] = {}
        h, total = hashlib.sha256(str(body.get("model")).encode()).hexdigest(), 0
        for i, (tag, block) in enumerate(blocks):
            if isinstance(block, dict) and block.get("cache_control"):
                bps[i] = _ttl(block["cache_control"])
                block = {k: v for k, v in block.items() if k != "cache_control"}
            text = _canon(block)
            total += math.ceil(len(text) / 4)
            h = hashlib.sha256(f"{h}\0{tag}\0{text}".encode()).hexdigest()
            hashes.append(h)
            cum.append(total)
        if len(bps) > 4:
            raise _ApiError(400, "invalid_request_error",
                            f"A maximum of 4 blocks with cache_control may be provided. Found {len(bps)}.")
        if body.get("cache_control") and blocks:
            bps.setdefault(len(blocks) - 1, _ttl(body["cache_control"]))
        return hashes, cum, bps

    def _input_usage(self, body: dict[str, Any], *, commit: bool) -> dict[str, Any]:
        hashes, cum, bps = self._prompt(body)
        now = self.clock()
        minimum = self.min_cache_for(body.get("model"))
        eligible = sorted((i, t) for i, t in bps.items() if cum[i] >= minimum)
        read_at = -1
        for b, _ in eligible:
            for i in range(b, max(b - 20, -1), -1):  # the API looks back up to 20 blocks per breakpoint
                hit = self._cache.get(hashes[i])
                if hit is not None and hit[0] > now:
                    read_at = max(read_at, i)
                    break
        created = {300.0: 0, 3600.0: 0}
        prev = read_at
        for b, t in eligible:
            if b > prev:
                created[t] += cum[b] - (cum[prev] if prev >= 0 else 0)
                if commit:
                    self._cache[hashes[b]] = (now + t, t)
                prev = b
        if commit and read_at >= 0:
            t = self._cache[hashes[read_at]][1]
            self._cache[hashes[read_at]] = (now + t, t)
        if commit:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        read = cum[read_at] if read_at >= 0 else 0
        creation = created[300.0] + created[3600.0]
        return {"input_tokens": (cum[-1] if cum else 0) - read - creation,
                "cache_creation_input_tokens": creation, "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": created[300.0],
                                   "ephemeral_1h_input_tokens": created[3600.0]}}

    # -- HTTP ----------------------------------------------------------------------------------
    def _handle(self, h: _Handler, method: str) -> None:
        raw = h.rfile.read(int(h.headers.get("content-length") or 0))
        path = h.path.partition("?")[0]
        try:
            body, bad_json = (json.loads(raw) if raw else None), False
        except ValueError:
            body, bad_json = None, True
        rec = Recorded(method, path, {k.lower(): v for k, v in h.headers.items()}, body, time.time())
        with self._lock:
            self.requests.append(rec)
            self._changed.notify_all()
        try:
            auth = rec.headers.get("authorization", "")  # anthropic>=2 sends the api_key as a Bearer token
            key = rec.headers.get("x-api-key") or (auth[7:] if auth.lower().startswith("bearer ") else None)
            if self.api_key is not None and key != self.api_key:
                raise _ApiError(401, "authentication_error", "invalid x-api-key")
            if bad_json:
                raise _ApiError(400, "invalid_request_error", "request body is not valid JSON")
            self._route(h, method, path, body, rec.headers)
        except _ApiError as e:
            h.send_error_action(e.action)
        except (ConnectionError, TimeoutError):
            h.close_connection = True  # the client went away (or the fake stopped)
        except Exception:
            self.errors.append(traceback.format_exc())
            if not h.sent:
                h.send_error_action(HttpError(500, "api_error", "fake server bug:\n" + self.errors[-1]))
            h.close_connection = True

    def _route(self, h: _Handler, method: str, path: str, body: Any, headers: dict[str, str]) -> None:
        m = re.fullmatch(r"/v1/messages/batches/([^/]+)(/results|/cancel)?", path)
        if method == "POST" and path == "/v1/messages":
            body = body if isinstance(body, dict) else {}
            check_request(body, headers, strict=self.strict_models)
            self._messages(h, body)
        elif method == "POST" and path == "/v1/messages/count_tokens":
            body = body if isinstance(body, dict) else {}
            check_request(body, headers, strict=self.strict_models, endpoint="count_tokens")
            with self._lock:
                cum = self._prompt(body)[1]
            h.send_json(200, {"input_tokens": cum[-1] if cum else 0})
        elif method == "POST" and path == "/v1/messages/batches":
            h.send_json(200, self._batch_json(self._create_batch(body or {}, headers)))
        elif method == "GET" and path == "/v1/messages/batches":
            with self._lock:
                data = [self._batch_json(self._tick(b)) for b in reversed(self.batches.values())]
            h.send_json(200, {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None})
        elif m and m[1] in self.batches and (method, m[2]) in (("GET", None), ("POST", "/cancel"), ("DELETE", None)):
            with self._lock:
                b = self._tick(self.batches[m[1]])
                if m[2] == "/cancel":
                    self.cancels.append(b.id)
                if m[2] == "/cancel" and b.processing_status == "in_progress":
                    b.processing_status, b.cancel_initiated_at = "canceling", datetime.now(UTC)
                if method == "DELETE":
                    del self.batches[b.id]
                out = {"id": b.id, "type": "message_batch_deleted"} if method == "DELETE" else self._batch_json(b)
            h.send_json(200, out)
        elif m and m[1] in self.batches and method == "GET" and m[2] == "/results":
            with self._lock:
                b = self._tick(self.batches[m[1]])
            if b.processing_status != "ended":
                raise _ApiError(404, "not_found_error", f"results of {b.id} are not available yet")
            h.send_bytes(200, "application/binary", "".join(_canon(r) + "\n" for r in b.results).encode())
        else:
            raise _ApiError(404, "not_found_error", f"{method} {path} not found")

    def _messages(self, h: _Handler, body: dict[str, Any]) -> None:
        action = self._next_action(body)
        if isinstance(action, Reply):
            msg = self._reply_message(body, action)
            h.send_sse(_sse_events(msg, partial_json=action.partial_json)) if body.get("stream") \
                else h.send_json(200, msg)
        elif isinstance(action, StreamError) and body.get("stream"):
            msg = self._reply_message(body, action.reply or Reply.text("partial answer"), commit=False)
            events = _sse_events(msg, cut_after=action.after_blocks)
            error = {"type": "error", "error": {"type": action.error_type, "message": action.message},
                     "request_id": h.request_id}
            h.send_sse([*events, ("error", error)])
        elif isinstance(action, StreamError):
            h.send_error_action(HttpError(529, action.error_type, action.message))
        elif isinstance(action, Expire):
            h.send_error_action(HttpError(500, "api_error", "Expire() is only meaningful for a batch entry"))
        elif isinstance(action, Drop):
            if body.get("stream"):
                msg = self._reply_message(body, action.reply or Reply.text("partial answer"), commit=False)
                h.send_sse(_sse_events(msg, cut_after=action.after_blocks))
            h.drop()
        else:
            assert isinstance(action, HttpError)
            h.send_error_action(action)

    def _create_batch(self, body: dict[str, Any], headers: dict[str, str]) -> Batch:
        reqs = body.get("requests")
        if not isinstance(reqs, list) or not reqs or not all(
                isinstance(r, dict) and isinstance(r.get("custom_id"), str) and isinstance(r.get("params"), dict)
                for r in reqs):
            raise _ApiError(400, "invalid_request_error", "requests: a non-empty list of {custom_id, params}")
        if len({r["custom_id"] for r in reqs}) != len(reqs):
            raise _ApiError(400, "invalid_request_error", "requests: custom_id values must be unique")
        with self._lock:
            delay = self.batch_delay
            b = Batch(_new_id("msgbatch_"), reqs, datetime.now(UTC),
                      None if delay is None else self.clock() + delay, headers=dict(headers))
            self.batches[b.id] = b
            self._changed.notify_all()
        return b

    def _tick(self, b: Batch) -> Batch:
        """End a batch whose time has come (or that is being canceled)."""
        if b.processing_status == "canceling" or (
                b.processing_status == "in_progress" and b.deadline is not None and self.clock() >= b.deadline):
            self.end_batch(b.id)
        return b

    def _batch_json(self, b: Batch) -> dict[str, Any]:
        counts = b.counts()
        ended = b.processing_status == "ended"
        return {"id": b.id, "type": "message_batch", "processing_status": b.processing_status,
                "request_counts": counts, "created_at": _rfc3339(b.created_at),
                "expires_at": _rfc3339(b.created_at + timedelta(hours=24)), "ended_at": _rfc3339(b.ended_at),
                "cancel_initiated_at": _rfc3339(b.cancel_initiated_at), "archived_at": None,
                "results_url": f"{self.url}/v1/messages/batches/{b.id}/results" if ended else None}


def _sse_events(msg: dict[str, Any], cut_after: int | None = None,
                partial_json: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The event sequence of a streamed `msg`; with `cut_after`, stop after that many blocks and
    the start (and first delta) of the next one, as a stream interrupted by an error is. With
    `partial_json`, the last block's input deltas are exactly that text."""
    usage = msg["usage"]
    start = {**msg, "content": [], "stop_reason": None, "stop_sequence": None, "stop_details": None,
             "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                                ("ping", {"type": "ping"})]
    for i, block in enumerate(msg["content"]):
        kind, first = block.get("type"), dict(block)
        deltas: list[dict[str, Any]] = []
        if kind == "text":
            first["text"] = ""
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"], 24)]
        elif kind in ("tool_use", "server_tool_use"):
            first["input"] = {}
            text = partial_json if partial_json is not None and i == len(msg["content"]) - 1 else _canon(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": c} for c in _chunks(text, 16)]
        elif kind == "thinking":
            first.update(thinking="", signature="")
            deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block["thinking"], 24)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": first}))
        if cut_after is not None and i >= cut_after:
            return events + [("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
                             for d in deltas[:1]]
        events += [("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    if cut_after is not None:
        return events
    delta_usage = {k: usage.get(k) for k in
                   ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")}
    return [
        *events,
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None,
                                                              "stop_details": msg.get("stop_details")},
                           "usage": delta_usage}),
        ("message_stop", {"type": "message_stop"})]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeAnthropic) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Unblock keep-alive handler threads: their reads return EOF."""
        with self.conn_lock:
            for sock in self.connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # connection-level noise (resets); bugs in the fake are caught in FakeAnthropic._handle


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    sent = False
    request_id = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        self.sent, self.request_id = False, _new_id("req_")
        self.server.fake._handle(self, method)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.sent = True
        self.send_response(status, "Overloaded" if status == 529 else None)
        for k, v in {"request-id": self.request_id, **headers}.items():
            self.send_header(k, v)
        self.end_headers()

    def send_bytes(self, status: int, content_type: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self._head(status, {"content-type": content_type, "content-length": str(len(data)), **(headers or {})})
        self.wfile.write(data)

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, "application/json", _canon(obj).encode(), headers)

    def send_error_action(self, e: HttpError) -> None:
        err: dict[str, Any] = {"type": e.error_type, "message": e.message}
        if e.details is not None:
            err["details"] = e.details
        self.send_json(e.status, {"type": "error", "error": err, "request_id": self.request_id}, e.headers)

    def drop(self) -> None:
        """Close the connection now, mid-response: the client sees the stream end unfinished."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_sse(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self._head(200, {"content-type": "text/event-stream", "cache-control": "no-cache", "connection": "close"})
        self.close_connection = True
        for name, data in events:
            self.wfile.write(f"event: {name}\ndata: {_canon(data)}\n\n".encode())
            self.wfile.flush()


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A started FakeAnthropic, stopped after the test."""
    with FakeAnthropic() as fake:
        yield fake


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tests.fakes.messages_api",
                                description="A fake Anthropic Messages API on loopback.")
    p.add_argument("--port-file", required=True, help="write the URL here (and to stdout) once listening")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--batch-delay", default="0", help="seconds, or 'none' to never end batches by themselves")
    p.add_argument("--api-key", default=None)
    p.add_argument("--min-cache-tokens", type=int, default=None, help="for every model (default: per model)")
    p.add_argument("--no-strict-models", action="store_true", help="let unknown models through, unchecked")
    p.add_argument("--reply-text", default=None, help="answer every request with this text (default: 500)")
    args = p.parse_args(argv)
    fake = FakeAnthropic(api_key=args.api_key, min_cache_tokens=args.min_cache_tokens, port=args.port,
                         strict_models=not args.no_strict_models,
                         batch_delay=None if args.batch_delay.lower() == "none" else float(args.batch_delay))
    if args.reply_text is not None:
        text: str = args.reply_text
        fake.responder = lambda body: Reply.text(text)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with fake:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(fake.url)
        os.replace(tmp, args.port_file)
        print(fake.url, flush=True)
        while not done.wait(0.5):
            pass


if __name__ == "__main__":
    main()
