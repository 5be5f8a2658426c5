"""Duration histograms an agent records among its replica's counters (`Context.observe`).

The counters are what a heartbeat carries, so a histogram is kept as counters, one key each:

- `seconds.<name>.<i>`: observations that fell in bucket `i`: at most `DURATION_BUCKETS[i]`
  seconds and more than the bound before it (not cumulative); `i == len(DURATION_BUCKETS)`
  counts those above the last bound;
- `seconds.<name>.count`: every observation;
- `seconds.<name>.sum_us`: their sum, in whole microseconds.

Only buckets that were hit have a key. `<name>` is lowercase `[a-z0-9_]` (at most 64
characters). The supervisor's `/metrics` exposes each name as the histogram
`reverie_<name>_seconds{agent,replica}` (cumulative buckets, `_sum`, `_count`) and leaves these
keys out of `reverie_agent_events_total`. Recording is O(1): the bucket is found by bisection.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DURATION_BUCKETS", "PREFIX", "RESERVED", "Durations", "check_name", "durations_of", "record"]

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0, 600.0)
"""Upper bounds, in seconds, of the buckets of every recorded duration (1 ms to 10 minutes)."""
PREFIX = "seconds."
RESERVED = frozenset({"task_duration", "verdict_latency"})
"""Names the swarm's own series take (`reverie_task_duration_seconds`...): an agent may not record them."""
_NAME = re.compile(r"[a-z0-9_]{1,64}")
_checked: set[str] = set()


def check_name(name: str) -> str:
    """`name` if an agent may record durations under it; raises ValueError otherwise."""
    if name in _checked:
        return name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a duration's name is 1 to 64 characters of lowercase [a-z0-9_], got {name!r}")
    if name in RESERVED:
        raise ValueError(f"{name!r} names one of the swarm's own series; choose another name")
    _checked.add(name)
    return name


def record(counters: Counter[str], name: str, seconds: float) -> None:
    """Count one duration of `seconds` under `name` in `counters` (see the module's key convention).
    Raises ValueError for an invalid name or a negative, infinite or NaN duration."""
    check_name(name)
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"a duration is a finite number of seconds >= 0, got {seconds!r} for {name!r}")
    key = PREFIX + name
    counters[f"{key}.{bisect.bisect_left(DURATION_BUCKETS, seconds)}"] += 1
    counters[f"{key}.count"] += 1
    counters[f"{key}.sum_us"] += round(seconds * 1_000_000)


@dataclass
class Durations:
    """One name's histogram read back from counters: observations per bucket (not cumulative,
    the last one above every bound) and their sum in seconds."""

    buckets: list[int]
    sum: float = 0.0

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at most that long) per bucket, ending at (inf, every observation)."""
        total, out = 0, []
        for bound, n in zip((*DURATION_BUCKETS, math.inf), self.buckets, strict=True):
            total += n
            out.append((bound, total))
        return out

    @property
    def count(self) -> int:
        return sum(self.buckets)


def durations_of(counters: Mapping[str, int]) -> dict[str, Durations]:
    """Every duration histogram kept in `counters`, by name. Keys under `seconds.` that do not
    follow the convention (a bad name, an unknown field or bucket) are ignored."""
    found: dict[str, Durations] = {}
    for key, n in counters.items():
        if not key.startswith(PREFIX):
            continue
        name, _, field = key[len(PREFIX):].rpartition(".")
        if not _NAME.fullmatch(name):
            continue
        if field == "sum_us":
            found.setdefault(name, _empty()).sum += n / 1_000_000
        elif field.isascii() and field.isdigit() and int(field) <= len(DURATION_BUCKETS):
            found.setdefault(name, _empty()).buckets[int(field)] += n
    return found


def _empty() -> Durations:
    return Durations(buckets=[0] * (len(DURATION_BUCKETS) + 1))
