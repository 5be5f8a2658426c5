"""Clamping and rescaling numbers into a range."""

from collections.abc import Sequence


def clamp(value: float, low: float, high: float) -> float:
    if low > high:
        raise ValueError(f"empty range [{low}, {high}]")
    return min(low, min(value, high))


def rescale(value: float, low: float, high: float) -> float:
    """Position of `value` within [low, high] as a fraction in [0, 1] (clamped)."""
    if low == high:
        return 0.0
    return (clamp(value, low, high) - low) / (high - low)


def percent(part: float, whole: float) -> int:
    """Whole-number percentage for a progress display, never below 0 or above 100."""
    if whole <= 0:
        return 100
    return round(clamp(100 * part / whole, 0, 100))


def normalize(values: Sequence[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [rescale(v, lo, hi) for v in values]
