"""Word counts for short texts, ignoring common English stopwords."""

import re
from collections import Counter

STOPWORDS = frozenset({"a", "an", "and", "are", "in", "is", "of", "the", "to"})
WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def count_words(text: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for word in words(text):
        if word in STOPWORDS:
            counts[word] += 1
    return counts


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The `n` most frequent words, most frequent first, ties in alphabetical order."""
    ranked = sorted(count_words(text).items(), key=lambda item: (-item[1], item[0]))
    return ranked[:n]
