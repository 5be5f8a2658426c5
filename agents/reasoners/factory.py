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

from ..code.reasoner import OfflineCodeReasoner
from .adapter import adapt
from .base import Reasoner
from .command import COMMAND_KINDS, CommandOptions, CommandReasoner
from .errors import ReasonerConfigError
from .offline import OfflineReasoner
from .router import KindRouter

__all__ = ["CLAUDE", "OFFLINE_KINDS", "OfflineOptions", "ReasonerConfigError", "check_reasoner", "claude_setup",
           "make_reasoner", "reasoner_kinds"]


class OfflineOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seed: int = 0
    max_path_len: int = 12
    latency: float = 0.0


OFFLINE_KINDS = frozenset({"plan", "code"})
"""What the offline reasoner dreams about: plans (graph search) and code (program repair)."""

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
    as `reverie.agents.claude.client.ClaudeOptions`), `command` (an external proposer,
    `CommandOptions`) or `module:Class` (called with the options as keyword arguments)."""
    if name == "anthropic":
        built: Reasoner = claude_setup().make_reasoner(options)
        return built
    if name == "offline":
        try:
            opts = msgspec.convert(options, OfflineOptions)
        except msgspec.ValidationError as exc:
            raise ReasonerConfigError(f"reasoner_options: {exc}") from None
        return KindRouter({"plan": OfflineReasoner(seed=opts.seed, max_path_len=opts.max_path_len,
                                                   latency=opts.latency),
                           "code": OfflineCodeReasoner(seed=opts.seed)}, default="plan")
    if name == "command":
        try:
            return CommandReasoner(msgspec.convert(options, CommandOptions))
        except msgspec.ValidationError as exc:
            raise ReasonerConfigError(f"reasoner_options: {exc}") from None
    try:
        reasoner = _reasoner_class(name)(**options)
    except TypeError as exc:
        raise ReasonerConfigError(f"cannot build reasoner {name!r}: {exc}") from None
    _check_signature(name, reasoner)
    return adapt(reasoner)


def reasoner_kinds(name: str, options: dict[str, Any]) -> frozenset[str]:
    """The task kinds the reasoner a dreamer's options name can dream about, without building
    it (`Reasoner.kinds`; `plan` for a class that does not say)."""
    if name == "offline":
        return OFFLINE_KINDS
    if name == "anthropic":
        kinds: frozenset[str] = claude_setup().KINDS
        return kinds
    if name == "command":
        named = options.get("kinds")
        return frozenset(named) if isinstance(named, list) else COMMAND_KINDS
    return frozenset(getattr(_reasoner_class(name), "kinds", frozenset({"plan"})))


def _reasoner_class(name: str) -> Any:
    module_name, sep, attr = name.partition(":")
    if not sep:
        raise ReasonerConfigError(f"reasoner must be 'offline', 'anthropic', 'command' or 'module:Class', "
                                  f"got {name!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ReasonerConfigError(f"cannot build reasoner {name!r}: {exc}") from None


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
