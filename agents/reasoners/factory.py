"""Building the reasoner a dreamer's options name (`offline`, `anthropic`, `module:Class`).

Claude's parts are loaded by name (`reverie.agents.claude.setup`) only when a config asks for
them: the `anthropic` SDK takes about a second to import, which an offline dreamer, restarted
after a crash, should not pay.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import msgspec

from .adapter import adapt
from .base import Reasoner
from .errors import ReasonerConfigError
from .offline import OfflineReasoner

__all__ = ["CLAUDE", "OfflineOptions", "ReasonerConfigError", "check_reasoner", "claude_setup", "make_reasoner"]


class OfflineOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seed: int = 0
    max_path_len: int = 12
    latency: float = 0.0


CLAUDE = "reverie.agents.claude.setup"
"""Where Claude's reasoner and option checks live, imported on first use."""


def claude_setup() -> Any:
    """`reverie.agents.claude.setup`, imported now if it was not yet."""
    return importlib.import_module(CLAUDE)


def check_reasoner(name: str, options: dict[str, Any]) -> None:
    """What `make_reasoner` would refuse, refused at config load; builds nothing that connects."""
    if name == "anthropic":
        claude_setup().claude_options(options)
    else:
        make_reasoner(name, options)


def make_reasoner(name: str, options: dict[str, Any]) -> Reasoner:
    """Build the reasoner a dreamer's options name: `offline`, `anthropic` (Claude, options
    as `reverie.agents.claude.client.ClaudeOptions`) or `module:Class` (called with the
    options as keyword arguments)."""
    if name == "anthropic":
        built: Reasoner = claude_setup().make_reasoner(options)
        return built
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
