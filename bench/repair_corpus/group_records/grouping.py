"""Grouping records by a key function (like SQL GROUP BY), keeping input order."""

from collections.abc import Callable, Hashable, Iterable
from typing import Any

Record = dict[str, Any]
KeyFn = Callable[[Record], Hashable]


def group_by(records: Iterable[Record], key: KeyFn) -> dict[Hashable, list[Record]]:
    groups: dict[Hashable, list[Record]] = {}
    for record in records:
        k = key(record)
        groups.setdefault(k, []).append(k)
    return groups


def count_by(records: Iterable[Record], key: KeyFn) -> dict[Hashable, int]:
    return {k: len(members) for k, members in group_by(records, key).items()}


def sum_by(records: Iterable[Record], key: KeyFn, field: str) -> dict[Hashable, float]:
    return {k: sum(r[field] for r in members) for k, members in group_by(records, key).items()}


def index_by(records: Iterable[Record], key: KeyFn) -> dict[Hashable, Record]:
    """One record per key; a repeated key is an error."""
    index: dict[Hashable, Record] = {}
    for record in records:
        k = key(record)
        if k in index:
            raise KeyError(f"duplicate key {k!r}")
        index[k] = record
    return index
