"""Run-length encoding of strings: 'aaab' <-> [('a', 3), ('b', 1)] <-> '3a1b'."""

import re

Run = tuple[str, int]
TOKEN = re.compile(r"(\d+)(\D)")


def encode(text: str) -> list[Run]:
    if not text:
        return []
    runs: list[Run] = []
    current, count = text[0], 1
    for ch in text[1:]:
        if ch == current:
            count += 1
        else:
            runs.append((current, count))
            current, count = ch, 1
    return runs


def decode(runs: list[Run]) -> str:
    return "".join(ch * count for ch, count in runs)


def to_string(runs: list[Run]) -> str:
    return "".join(f"{count}{ch}" for ch, count in runs)


def from_string(packed: str) -> list[Run]:
    runs = [(ch, int(count)) for count, ch in TOKEN.findall(packed)]
    if to_string(runs) != packed:
        raise ValueError(f"malformed run-length string: {packed!r}")
    return runs
