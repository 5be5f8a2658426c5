"""Bracket matching for expressions and code snippets."""

PAIRS = {")": "(", "]": "[", "}": "{"}
OPENERS = frozenset(PAIRS.values())


def first_error(text: str) -> int | None:
    """Index of the first bracket that breaks the nesting, len(text) if some stay open, else None."""
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch in OPENERS:
            stack.append(i)
        elif ch in PAIRS:
            if stack or text[stack.pop()] != PAIRS[ch]:
                return i
    return len(text) if stack else None


def is_balanced(text: str) -> bool:
    return first_error(text) is None


def max_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch in OPENERS:
            depth += 1
            best = max(best, depth)
        elif ch in PAIRS:
            depth -= 1
    return best
