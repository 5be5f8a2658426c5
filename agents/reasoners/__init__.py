"""Reasoners: what proposes candidate paths. `offline` ships, `anthropic` is Claude
(`reverie.agents.claude`), `module:Class` plugs in others (`factory.make_reasoner` builds them)."""

from __future__ import annotations

from .base import Proposal, Proposals, Reasoner, RoundState
from .offline import OfflineReasoner

__all__ = ["OfflineReasoner", "Proposal", "Proposals", "Reasoner", "RoundState"]
