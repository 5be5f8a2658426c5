"""Word and character n-grams for simple text similarity."""

from collections import Counter
from collections.abc import Sequence


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All runs of `n` consecutive tokens, in order."""
    if n < 1:
        raise ValueError("n must be at least 1")
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n)]


def char_ngrams(text: str, n: int) -> list[str]:
    return ["".join(gram) for gram in ngrams(text, n)]


def similarity(a: str, b: str, n: int = 2) -> float:
    """Dice coefficient of the character n-gram multisets of `a` and `b`."""
    grams_a, grams_b = Counter(char_ngrams(a, n)), Counter(char_ngrams(b, n))
    total = sum(grams_a.values()) + sum(grams_b.values())
    if total == 0:
        return 1.0 if a == b else 0.0
    return 2 * sum((grams_a & grams_b).values()) / total
