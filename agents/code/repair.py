"""The search: K single-edit repairs per round, most likely first, never one proposed before.

Each candidate line from `localise` contributes its catalogue `mutations`; a mutation scores its
line's suspicion (discounted for each of the line's mutations already tried: their failing says
the line is less likely the bug) x its prior x a kind boost (the failures' exception types: a
RecursionError favours a missing base case, an IndexError an off-by-one; kinds named in recalled
`lessons` favour those a little) x a tiny seeded jitter that only breaks near-ties. The round is
picked greedily, each further pick from the same line or of the same kind discounted, so K
candidates spread over lines unless one line is far more suspicious. Lines are expanded lazily,
most suspicious first, until no unexpanded line could beat the round's weakest pick (or a budget
of lines with untried mutations is spent). Deterministic for the same inputs and seed; it reads
files and test output only and never runs code.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

import msgspec

from .localise import localise
from .mutate import KINDS, Mutation, mutations
from .testout import Failure

__all__ = ["KIND_DISCOUNT", "LINE_BUDGET", "LINE_DISCOUNT", "TRIED_DISCOUNT", "Mutation", "RepairSearch",
           "fingerprint", "kind_boosts", "localise", "mutations"]

LINE_DISCOUNT = 0.6
"""Each earlier pick of the round on the same line multiplies a candidate's score by this."""
KIND_DISCOUNT = 0.9
"""Each earlier pick of the round of the same kind multiplies a candidate's score by this."""
TRIED_DISCOUNT = 0.85
"""Each mutation of a line tried in earlier rounds (and failed) multiplies the line's suspicion
by this: a line whose likeliest fixes all failed is less likely the bug, so later rounds move on."""
LINE_BUDGET = 16
"""A round looks at no more than this many lines with untried mutations (or 4 x K), most
suspicious first: in a flat static ranking (round 1) every line ties, and a big project has many."""

_LESSON_BOOST = 1.3
_ALIASES: dict[str, tuple[str, ...]] = {
    "comparison": ("comparison", "compare"), "off-by-one": ("off-by-one", "off by one", "off_by_one", "boundary"),
    "base-case": ("base-case", "base case", "base_case"), "arithmetic": ("arithmetic",),
    "min-max": ("min-max", "min/max", "min_max"), "string-method": ("string-method", "string method", "string_method"),
    "negation": ("negation", "negate", "negated"), "constant": ("constant", "boolean flip"),
    "remove-increment": ("remove-increment", "remove_increment", "stray increment"),
    "swap-arguments": ("swap-arguments", "swapped", "swap_arguments"), "variable": ("variable",),
}
_HINTS: tuple[tuple[tuple[str, ...], dict[str, float]], ...] = (
    (("RecursionError", "maximum recursion depth"), {"base-case": 2.0, "comparison": 1.2}),
    (("IndexError", "out of range"), {"off-by-one": 1.5, "comparison": 1.2}),
    (("ZeroDivisionError",), {"off-by-one": 1.3, "arithmetic": 1.2}),
    (("Timeout", "timed out", "TimeoutExpired"), {"comparison": 1.2, "negation": 1.2, "arithmetic": 1.2}),
    (("NameError", "UnboundLocalError"), {"variable": 1.3}),
    (("TypeError",), {"swap-arguments": 1.2, "variable": 1.2, "constant": 1.1}),
)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _combine(digests: Mapping[str, bytes]) -> str:
    h = hashlib.sha256()
    for path in sorted(digests):
        h.update(path.encode("utf-8", "surrogatepass") + b"\0" + digests[path])
    return h.hexdigest()


def fingerprint(files_after: Mapping[str, str]) -> str:
    """A sha256 over the sorted (path, content) of the whole file set after an edit: what
    callers put in `tried` for every candidate proposed so far."""
    return _combine({path: _digest(text) for path, text in files_after.items()})


def kind_boosts(failures: Sequence[Failure], lessons: Sequence[str] = ()) -> dict[str, float]:
    """How much each mutation kind is favoured: by the failures' exception types and, mildly,
    by kinds the lessons name. 1.0 for a kind nothing speaks for."""
    boosts = dict.fromkeys(KINDS, 1.0)
    seen = " ".join(dict.fromkeys(f.message for f in failures))
    for needles, kinds in _HINTS:
        if any(n in seen for n in needles):
            for kind, factor in kinds.items():
                boosts[kind] = max(boosts[kind], factor)
    text = " ".join(lessons).lower()
    for kind, aliases in _ALIASES.items():
        if any(a in text for a in aliases):
            boosts[kind] *= _LESSON_BOOST
    return boosts


class _Pick(msgspec.Struct, frozen=True):
    score: float
    order: int
    mutation: Mutation
    fp: str


class RepairSearch:
    """Proposes repairs for a code task, round after round. Stateless: everything it learns is
    in the `failures` and `tried` it is given (the catalogue caches each line's mutations)."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def _jitter(self, mutation: Mutation) -> float:
        h = hashlib.sha256(f"{self.seed}\0{mutation.path}\0{mutation.description}".encode()).digest()
        return 1.0 + 0.02 * int.from_bytes(h[:4], "big") / 2**32

    def propose(self, files: Mapping[str, str], editable: Sequence[str], failures: Sequence[Failure], *, k: int,
                tried: Collection[str], lessons: Sequence[str] = ()) -> list[Mutation]:
        """Up to `k` mutations, best first, none whose `fingerprint` (of the whole file set after
        it) is in `tried`, no two alike; [] when every mutation of every line has been tried."""
        if k <= 0:
            return []
        tried = tried if isinstance(tried, set | frozenset) else set(tried)
        ranked = localise(files, editable, failures)
        boosts = kind_boosts(failures, lessons)
        ceiling = max(boosts.values()) * 1.02
        digests = {path: _digest(text) for path, text in files.items()}
        pool: list[_Pick] = []
        seen: set[str] = set()
        lines = 0
        for i, (path, line, suspicion) in enumerate(ranked):
            before = len(pool)
            fresh: list[tuple[Mutation, str]] = []
            failed = 0
            for mutation in mutations(path, files[path], line):
                fp = _combine({**digests, path: _digest(mutation.new_source)})
                failed += fp in tried
                if fp not in tried and fp not in seen:
                    seen.add(fp)
                    fresh.append((mutation, fp))
            weight = suspicion * TRIED_DISCOUNT ** failed
            for mutation, fp in fresh:
                score = weight * mutation.prior * boosts.get(mutation.kind, 1.0) * self._jitter(mutation)
                pool.append(_Pick(score, len(pool), mutation, fp))
            lines += len(pool) > before
            if lines >= max(LINE_BUDGET, 4 * k):
                break  # enough fresh lines for this round: the rest are no more suspicious
            if len(pool) >= k and i + 1 < len(ranked):
                picks = _select(pool, k)
                if len(picks) == k and picks[-1][0] >= ranked[i + 1][2] * ceiling:
                    break  # nothing on a less suspicious line can beat this round's weakest pick
        return [pick.mutation for _, pick in _select(pool, k)]


def _select(pool: Sequence[_Pick], k: int) -> list[tuple[float, _Pick]]:
    """Greedy: the best discounted score, again and again; returns (discounted score, pick)."""
    lines: Counter[tuple[str, int]] = Counter()
    kinds: Counter[str] = Counter()
    left = sorted(pool, key=lambda p: (-p.score, p.order))
    out: list[tuple[float, _Pick]] = []
    while left and len(out) < k:
        best_i, best = 0, -1.0
        for j, pick in enumerate(left):
            if pick.score <= best:
                break  # sorted: no later pick can beat it, whatever its discounts
            m = pick.mutation
            value = pick.score * LINE_DISCOUNT ** lines[(m.path, m.line)] * KIND_DISCOUNT ** kinds[m.kind]
            if value > best:
                best_i, best = j, value
        pick = left.pop(best_i)
        lines[(pick.mutation.path, pick.mutation.line)] += 1
        kinds[pick.mutation.kind] += 1
        out.append((best, pick))
    return out
