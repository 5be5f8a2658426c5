"""Trailing moving averages over a series of readings."""

from collections.abc import Sequence


def moving_average(values: Sequence[int], k: int) -> list[float]:
    """Average of each window of `k` consecutive values (len(values) - k + 1 of them)."""
    if k <= 0:
        raise ValueError("window size must be positive")
    averages: list[float] = []
    total = 0
    for i, value in enumerate(values):
        total += value
        if i >= k:
            total -= values[i - k]
        if i >= k - 1:
            averages.append(total // k)
    return averages


def smooth(values: Sequence[int], k: int) -> list[float]:
    """Like moving_average, but the first k - 1 points average what is available so far."""
    head = [sum(values[:i + 1]) / (i + 1) for i in range(min(k - 1, len(values)))]
    return head + moving_average(values, k)
