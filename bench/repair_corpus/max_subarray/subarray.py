"""Maximum-sum contiguous run (Kadane's algorithm), e.g. the best streak of daily P&L."""

from collections.abc import Sequence


def max_subarray_sum(xs: Sequence[int]) -> int:
    """Largest sum of a non-empty contiguous run of `xs`."""
    if not xs:
        raise ValueError("empty sequence")
    best = current = xs[0]
    for x in xs[1:]:
        current = max(0, current + x)
        best = max(best, current)
    return best


def max_subarray(xs: Sequence[int]) -> tuple[int, int]:
    """(start, stop) slice bounds of the earliest maximum-sum run."""
    if not xs:
        raise ValueError("empty sequence")
    best, bounds = xs[0], (0, 1)
    current, start = 0, 0
    for i, x in enumerate(xs):
        if current <= 0:
            current, start = x, i
        else:
            current += x
        if current > best:
            best, bounds = current, (start, i + 1)
    return bounds
