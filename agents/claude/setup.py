"""Building Claude-backed parts from a dreamer's options. The reasoner factory loads this
module only when a config names Claude: importing the `anthropic` SDK costs about a second,
which an offline dreamer (and its restart after a crash) should not pay."""

from __future__ import annotations

from typing import Any

import msgspec

from ..reasoners.base import Reasoner
from ..reasoners.errors import ReasonerConfigError
from .client import ClaudeConfigError, ClaudeFatal, ClaudeOptions, check_options
from .consolidator import ClaudeConsolidator
from .reasoner import ClaudeReasoner

__all__ = ["KINDS", "claude_options", "make_consolidator", "make_reasoner"]

KINDS = ClaudeReasoner.kinds


def claude_options(options: dict[str, Any]) -> ClaudeOptions:
    """The options as `ClaudeOptions`, checked against the model's rules; builds nothing that connects."""
    try:
        claude: ClaudeOptions = msgspec.convert(options, ClaudeOptions)
        check_options(claude)
    except msgspec.ValidationError as exc:
        raise ReasonerConfigError(f"reasoner_options: {exc}") from None
    except ClaudeConfigError as exc:
        raise ReasonerConfigError(f"reasoner_options.{exc}", field=f".reasoner_options.{exc.field}",
                                  detail=exc.detail) from None
    except ClaudeFatal as exc:
        raise ReasonerConfigError(f"reasoner anthropic: {exc}") from None
    return claude


def make_reasoner(options: dict[str, Any]) -> Reasoner:
    return ClaudeReasoner(claude_options(options))


def make_consolidator(options: dict[str, Any]) -> ClaudeConsolidator:
    return ClaudeConsolidator(msgspec.convert(options, ClaudeOptions))
