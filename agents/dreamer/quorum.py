"""How a candidate's verdicts become one decision."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from reverie.protocol import Decision, Verdict

__all__ = ["Quorum", "decide"]


class Quorum(enum.StrEnum):
    ALL = "all"  # every critic kind must accept
    MAJORITY = "majority"  # more than half of the critic kinds accept
    WEIGHTED = "weighted"  # accepting critics' weight share reaches the threshold


def decide(verdicts: Sequence[Verdict], critics: Sequence[str], policy: Quorum, *,
           weights: Mapping[str, float] | None = None, threshold: float = 0.5) -> Decision:
    """Any flag wins (a harmful candidate is quarantined whatever the others say). A critic
    that did not answer counts as not accepting."""
    if any(v.decision is Decision.FLAG for v in verdicts):
        return Decision.FLAG
    accepting = {v.critic for v in verdicts if v.decision is Decision.ACCEPT} & set(critics)
    if not critics:
        return Decision.ACCEPT
    if policy is Quorum.ALL:
        ok = len(accepting) == len(set(critics))
    elif policy is Quorum.MAJORITY:
        ok = len(accepting) * 2 > len(set(critics))
    else:
        w = weights or {}
        total = sum(w.get(c, 1.0) for c in set(critics))
        ok = total > 0 and sum(w.get(c, 1.0) for c in accepting) / total >= threshold
    return Decision.ACCEPT if ok else Decision.REJECT
