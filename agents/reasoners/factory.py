"""Building the reasoner a dreamer's options name (`offline`, `anthropic`, `module:Class`).

Apart from the package `__init__` on purpose: the Claude reasoner builds on `reasoners.base`,
so the package itself cannot import it; this module can.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import msgspec

from reverie.protocol import ReverieError

from ..claude.client import ClaudeConfigError, ClaudeFatal, ClaudeOptions, check_options
from ..claude.reasoner import ClaudeReasoner
from .adapter import adapt
from .base import Reasoner
from .offline import OfflineReasoner

__all__ = ["OfflineOptions", "ReasonerConfigError", "check_reasoner", "make_reasoner"]


class ReasonerConfigError(ReverieError):
    """A dreamer's `reasoner` / `reasoner_options` cannot build a reasoner; `field` is the
    option's path below the dreamer's options (".reasoner_options.thinking"), when known."""

    def __init__(self, message: str, *, field: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail or message


class OfflineOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seed: int = 0
    max_path_len: int = 12
    latency: float = 0.0


def _claude_options(options: dict[str, Any]) -> ClaudeOptions:
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


def check_reasoner(name: str, options: dict[str, Any]) -> None:
    """What `make_reasoner` would refuse, refused at config load; builds nothing that connects."""
    if name == "anthropic":
        _claude_options(options)
    else:
        make_reasoner(name, options)


def make_reasoner(name: str, options: dict[str, Any]) -> Reasoner:
    """Build the reasoner a dreamer's options name: `offline`, `anthropic` (Claude, options
    as `reverie.agents.claude.client.ClaudeOptions`) or `module:Class` (called with the
    options as keyword arguments)."""
    if name == "anthropic":
        return ClaudeReasoner(_claude_options(options))
    if name == "offline":
        try:
            opts = msgspec.convert(options, OfflineOptions)
        except msgspec.ValidationError as exc:
            raise ReasonerConfigError(f"reasoner_options: {exc}") from None
        return OfflineReasoner(seed=opts.seed, max_path_len=opts.max_path_len, latency=opts.latency)
    module_name, sep, attr = name.partition(":")
    if not sep:
        raise ReasonerConfigError(f"reasoner must be 'offline' or 'module:Class', got {name!r}")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
        reasoner = cls(**options)
    except (ImportError, AttributeError, TypeError) as exc:
        raise ReasonerConfigError(f"cannot build reasoner {name!r}: {exc}") from None
    _check_signature(name, reasoner)
    return adapt(reasoner)


def _check_signature(name: str, reasoner: object) -> None:
    """Fail when the dreamer starts, not on every task, if `propose` cannot be called as the
    dreamer calls it: propose(task, round, k, history, lessons)."""
    want = "`async def propose(self, task, round, k, history, lessons=())`"
    propose = getattr(reasoner, "propose", None)
    if propose is None or not inspect.iscoroutinefunction(propose):
        raise ReasonerConfigError(f"{name} needs {want}")
    try:
        inspect.signature(propose).bind(None, 1, 1, (), ())
    except TypeError as exc:
        raise ReasonerConfigError(f"{name}.propose cannot take (task, round, k, history, lessons): {exc}; "
                                  f"write {want}") from None
