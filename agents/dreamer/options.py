"""A dreamer's options: its reasoner, its budgets, its critics and how their verdicts combine."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from reverie.runtime.memory import dreams as consolidation

from .quorum import Quorum

__all__ = ["DreamerOptions"]


class DreamerOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reasoner: str = "offline"
    """`offline` (deterministic, no network), `anthropic` (Claude) or `module:Class`."""
    reasoner_options: dict[str, Any] = {}
    domains: dict[str, str] = {}
    """More task domains, by kind: `module:Class` of a `reverie.agents.domains.Domain` (a
    built-in kind named here is replaced)."""
    kinds: list[str] | None = None
    """The task kinds to serve; default: every domain's kind the reasoner can dream about."""
    candidates_per_round: int = 3
    max_rounds: int = 5
    max_seconds: float = 120.0
    verdict_timeout: float = 5.0
    """How long one request for verdicts waits."""
    verdict_attempts: int = 2
    """Requests per candidate before a critic that has not answered counts as not accepting: a
    verdict lost to a NATS reconnect must not burn a good candidate."""
    quorum: Quorum = Quorum.ALL
    weights: dict[str, float] = {}
    threshold: float = 0.5
    critics: list[str] | None = None
    """Critic agents to wait for; default: every agent in the config whose role is `critic`."""
    keep_best: int = 3
    recall_limit: int = 20
    """How many lessons from earlier tasks the reasoner gets."""
    keep_dead_branches: int = 10_000
    """Size budget: rejected branches beyond the newest this many are collapsed to their lessons."""
    consolidate_every: float = 0.0
    """Seconds between in-place consolidation dreams over this agent's memory; 0 = never."""
    consolidator: Literal["offline", "claude"] = "offline"
    """What plans those dreams: deterministic duplicate merging, or Claude (`consolidator_options`)."""
    consolidator_options: dict[str, Any] = {}
    """`ClaudeOptions` for `consolidator = "claude"`."""
    consolidation_instructions: Annotated[str, msgspec.Meta(max_length=consolidation.MAX_INSTRUCTIONS)] = ""
