"""How a component calls Claude (`ClaudeOptions`) and the config-time checks of those options."""

from __future__ import annotations

import logging
import os
from typing import Literal

import msgspec

from .errors import ClaudeConfigError, ClaudeFatal, key_hint
from .models import API_VERSION, SAMPLING_API, ModelRules, ThinkingType, rules_for
from .prices import Price

__all__ = ["ClaudeOptions", "check_options"]

log = logging.getLogger("reverie.claude")


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


def check_options(options: ClaudeOptions) -> None:
    """Config-time checks, so a request the API would refuse is a config error at `reverie up`
    naming the field (`ClaudeConfigError`), not a 400 in round 2. A missing key is one line too."""
    if not os.environ.get(options.api_key_env):
        raise ClaudeFatal(f"{options.api_key_env} is not set: {key_hint(options.api_key_env)}")
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
