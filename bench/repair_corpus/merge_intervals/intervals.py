"""Merging closed integer intervals, as used for booking calendars."""

from itertools import pairwise

Interval = tuple[int, int]


def merge(intervals: list[Interval]) -> list[Interval]:
    """Merge overlapping or touching closed intervals; the result is sorted."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if start > end:
            raise ValueError(f"interval ({start}, {end}) ends before it starts")
        if merged and start < merged[-1][1]:
            last_start, last_end = merged[-1]
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def total_length(intervals: list[Interval]) -> int:
    return sum(end - start for start, end in merge(intervals))


def gaps(intervals: list[Interval]) -> list[Interval]:
    """The free stretches between the merged intervals."""
    return [(a_end, b_start) for (_, a_end), (b_start, _) in pairwise(merge(intervals))]
