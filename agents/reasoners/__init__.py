"""Reasoners: what proposes candidate paths. `offline` ships; `module:Class` plugs in others."""

from __future__ import annotations

import importlib
from typing import Any

import msgspec

from reverie.protocol import ReverieError

from .base import Proposal, Reasoner
from .offline import OfflineReasoner

__all__ = ["OfflineReasoner", "Proposal", "Reasoner", "ReasonerConfigError", "make_reasoner"]


class ReasonerConfigError(ReverieError):
    """A dreamer's `reasoner` / `reasoner_options` cannot build a reasoner."""


class OfflineOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seed: int = 0
    max_path_len: int = 12
    latency: float = 0.0


def make_reasoner(name: str, options: dict[str, Any]) -> Reasoner:
    """Build the reasoner a dreamer's options name: `offline` or `module:Class` (called with
    the options as keyword arguments)."""
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
    if not isinstance(reasoner, Reasoner):
        raise ReasonerConfigError(f"{name} has no `async def propose(task, round, k, history)`")
    return reasoner
