"""Flattening nested lists, e.g. menu trees or parsed JSON arrays."""

from typing import Any


def flatten(items: list[Any]) -> list[Any]:
    """Every non-list element of `items`, depth first, in order."""
    head, *tail = items
    if isinstance(head, list):
        return flatten(head) + flatten(tail)
    return [head, *flatten(tail)]


def depth(items: Any) -> int:
    """Nesting depth: 0 for a non-list, 1 for a flat list."""
    if not isinstance(items, list):
        return 0
    return 1 + max((depth(x) for x in items), default=0)


def count_leaves(items: list[Any]) -> int:
    return len(flatten(items))
