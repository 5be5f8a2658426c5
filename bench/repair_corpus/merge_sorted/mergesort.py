"""Merge sort, stable, returning a new list."""

from collections.abc import Sequence


def merge(left: Sequence[int], right: Sequence[int]) -> list[int]:
    result: list[int] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            result.append(left[i])
            i += 1
        else:
            result.append(right[j])
            j += 1
    result.extend(left[i:])
    result.extend(right[i:])
    return result


def merge_sort(items: Sequence[int]) -> list[int]:
    if len(items) <= 1:
        return list(items)
    mid = len(items) // 2
    return merge(merge_sort(items[:mid]), merge_sort(items[mid:]))


def merge_runs(runs: list[list[int]]) -> list[int]:
    """Merge already-sorted runs one after another."""
    merged: list[int] = []
    for run in runs:
        merged = merge(merged, run)
    return merged
