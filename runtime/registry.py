"""Agent kinds: built-in names and `module:Class` references."""

from __future__ import annotations

import importlib

from .agent import Agent

BUILTIN: dict[str, str] = {
    "dreamer": "reverie.agents.dreamer:Dreamer",
    "rule-critic": "reverie.agents.critics:RuleCritic",
    "plan-critic": "reverie.agents.critics:PlanCritic",
    "budget-critic": "reverie.agents.critics:BudgetCritic",
    "llm-critic": "reverie.agents.claude.critic:ClaudeCritic",
}


def resolve_agent_class(kind: str) -> type[Agent]:
    """Import the Agent subclass that `kind` names. Raises ImportError, AttributeError, TypeError."""
    target = BUILTIN.get(kind, kind)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        known = ", ".join(sorted(BUILTIN))
        raise TypeError(f"expected a built-in kind ({known}) or 'module:Class', got {kind!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import module {module_name!r} for kind {kind!r}: {exc}") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise TypeError(f"{target} is not a subclass of reverie.runtime.Agent")
    return cls
