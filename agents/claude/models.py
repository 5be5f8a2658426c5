"""What each Claude model accepts, from Anthropic's documentation, in one table: every request
reverie builds and every config check asks it, so a model's rules are written once.

Sources (platform.claude.com/docs, read 2026-12): the "What's new" page and overview of each
model, build-with-claude/{adaptive-thinking,effort,prompt-caching,thinking-troubleshooting},
api/migration-2026-10-21. Facts the docs only imply are marked "inferred".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

import msgspec
from anthropic._constants import ANTHROPIC_API_VERSION

__all__ = [
    "API_VERSION",
    "EFFORTS",
    "MODEL_RULES",
    "SAMPLING_API",
    "UNKNOWN",
    "Effort",
    "ModelRules",
    "ThinkingType",
    "model_entry",
    "rules_for",
]

log = logging.getLogger("reverie.claude")

Effort = Literal["low", "medium", "high", "xhigh", "max"]
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high", "xhigh", "max")
ThinkingType = Literal["enabled", "adaptive", "disabled", "between_tools"]

API_VERSION = ANTHROPIC_API_VERSION
"""The `anthropic-version` the installed SDK sends."""
SAMPLING_API = API_VERSION < "2026-10-21"
"""API version 2026-10-21 refuses `temperature`, `top_p` and `top_k` at any value, on every model."""


class ModelRules(msgspec.Struct, frozen=True, kw_only=True):
    forced_tool_choice: bool
    """`tool_choice` {"type": "tool"} / {"type": "any"} accepted (never together with thinking)."""
    thinking: frozenset[ThinkingType]
    """The `thinking.type` values the model accepts."""
    thinks_by_default: bool
    """Adaptive thinking runs when the request has no `thinking`."""
    off: ThinkingType | None
    """The `thinking.type` that turns thinking off (`disabled`; Sonnet 5.5: `between_tools`), or
    None where thinking is always on."""
    off_efforts: tuple[Effort, ...] = ("low", "medium", "high")
    """The efforts at which `off` is accepted (xhigh and max need thinking on)."""
    sampling: bool
    """Non-default `temperature`/`top_p`/`top_k` accepted (only under API versions before 2026-10-21)."""
    min_cache_tokens: int
    """Shorter prefixes are silently not cached."""
    efforts: tuple[Effort, ...]
    """`output_config.effort` values accepted; () = no effort parameter."""
    default_effort: Effort | None


_ALWAYS_ADAPTIVE = ModelRules(forced_tool_choice=False, thinking=frozenset({"adaptive"}), thinks_by_default=True,
                              off=None, sampling=False, min_cache_tokens=512, efforts=EFFORTS, default_effort="high")
_ADAPTIVE_5 = ModelRules(forced_tool_choice=True, thinking=frozenset({"adaptive", "disabled"}), thinks_by_default=True,
                         off="disabled", sampling=False, min_cache_tokens=512, efforts=EFFORTS, default_effort="high")
_OPUS_4_8 = ModelRules(forced_tool_choice=True, thinking=frozenset({"adaptive", "disabled"}), thinks_by_default=False,
                       off="disabled", sampling=False, min_cache_tokens=1024, efforts=EFFORTS, default_effort="high")
_CLAUDE_4_6 = ModelRules(forced_tool_choice=True, thinking=frozenset({"enabled", "adaptive", "disabled"}),
                         thinks_by_default=False, off="disabled", off_efforts=("low", "medium", "high", "max"),
                         sampling=True, min_cache_tokens=4096, efforts=("low", "medium", "high", "max"),
                         default_effort="high")
_CLAUDE_4_5 = ModelRules(forced_tool_choice=True, thinking=frozenset({"enabled", "disabled"}), thinks_by_default=False,
                         off="disabled", sampling=True, min_cache_tokens=1024, efforts=(),
                         default_effort=None)

MODEL_RULES: dict[str, ModelRules] = {
    # Fable/Mythos 5.1 and 5.2, Opus 5.5: thinking always adaptive, no forced tool use
    "claude-fable-5-2": _ALWAYS_ADAPTIVE,  # as 5.1 (inferred: its page lists no change)
    "claude-mythos-5-2": _ALWAYS_ADAPTIVE,
    "claude-fable-5-1": _ALWAYS_ADAPTIVE,
    "claude-mythos-5-1": _ALWAYS_ADAPTIVE,
    "claude-opus-5-5": msgspec.structs.replace(_ALWAYS_ADAPTIVE, default_effort="medium"),
    # Fable/Mythos 5: adaptive only, forcing still accepted (its refusal is new in 5.1)
    "claude-fable-5": msgspec.structs.replace(_ALWAYS_ADAPTIVE, forced_tool_choice=True),
    "claude-mythos-5": msgspec.structs.replace(_ALWAYS_ADAPTIVE, forced_tool_choice=True),
    # Sonnet 5.5: `between_tools` instead of `disabled`, no forced tool use
    "claude-sonnet-5-5": msgspec.structs.replace(_ADAPTIVE_5, forced_tool_choice=False, off="between_tools",
                                                 thinking=frozenset({"adaptive", "between_tools"})),
    "claude-opus-5": _ADAPTIVE_5,
    "claude-sonnet-5": msgspec.structs.replace(_ADAPTIVE_5, min_cache_tokens=1024),  # disabled: inferred from Opus 5
    "claude-haiku-5-5": msgspec.structs.replace(_ADAPTIVE_5, default_effort="medium"),  # forcing: inferred
    "claude-opus-4-8": _OPUS_4_8,
    "claude-opus-4-7": msgspec.structs.replace(_OPUS_4_8, min_cache_tokens=2048),
    "claude-mythos-preview": msgspec.structs.replace(_OPUS_4_8, min_cache_tokens=2048, thinks_by_default=True),
    "claude-opus-4-6": _CLAUDE_4_6,
    "claude-sonnet-4-6": msgspec.structs.replace(_CLAUDE_4_6, min_cache_tokens=1024),
    "claude-opus-4-5": msgspec.structs.replace(_CLAUDE_4_5, min_cache_tokens=4096, efforts=("low", "medium", "high"),
                                               default_effort="high"),
    "claude-sonnet-4-5": _CLAUDE_4_5,
    "claude-haiku-4-5": msgspec.structs.replace(_CLAUDE_4_5, min_cache_tokens=4096),
}
"""Matched by the longest id the model starts with (`claude-haiku-4-5-20251001` is `claude-haiku-4-5`)."""

UNKNOWN = _ALWAYS_ADAPTIVE
"""A model this table does not know gets the strictest current rules."""

_warned: set[str] = set()


def model_entry(model: str, names: Iterable[str]) -> str | None:
    """The entry of a per-model table that `model` is: itself, or the longest id it is a dated
    snapshot of (`claude-haiku-4-5-20251001` is `claude-haiku-4-5`; `claude-opus-5-5` is not
    `claude-opus-5`)."""
    matches = [name for name in names if model == name or model.startswith(name + "-")]
    return max(matches, key=len) if matches else None


def rules_for(model: str) -> ModelRules:
    """The rules of `model`; an unknown model gets `UNKNOWN`'s, said once in the log."""
    entry = model_entry(model, MODEL_RULES)
    if entry is not None:
        return MODEL_RULES[entry]
    if model not in _warned:
        _warned.add(model)
        log.warning("model %s is not in reverie's model table: requests follow the strictest current rules "
                    "(no forced tool choice, adaptive thinking only, no sampling parameters)", model)
    return UNKNOWN
