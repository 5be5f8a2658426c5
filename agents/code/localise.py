"""Where the bug probably is: (path, line, suspicion) over the editable files, most suspicious first.

Failing tests' traceback frames in editable files rank first: the innermost frame highest, outer
frames less, then the other lines of the functions those frames are in. A failure with no
editable frame (an `assert f(x) == y` in the test itself) points at the editable functions the
failing test calls (read from the test's source and the message's `where ... = f(...)`), and
at what those call in turn. Everything is summed over the failures reported (the same failing
test with the same frames once per report: the original bug fails the same way under every
candidate that missed it, while a candidate that broke something else adds one report), so a
line many failures pass through outranks one a single failure touches. Every other candidate line of every
editable file follows, ranked statically (comparisons, range bounds, indexing, arithmetic,
returns inside functions first, then file order), so the ranking is never empty and round 1,
with no failures known yet, has something to try.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

from .edits import SourceFile, load
from .scoped import is_recursive_call
from .testout import Failure

__all__ = ["FRAME", "FUNCTION", "STATIC", "localise", "static_lines"]

FRAME = 1.0
"""What the innermost editable frame of one failing test adds (outer frames: 1/2, 1/3, ...)."""
FUNCTION = 0.5
"""At most what each other line of a frame's function, or of a function the test calls, adds."""
STATIC = 0.02
"""At most what the static ranking adds to any line, failures or not."""

_CALLED = re.compile(r"([A-Za-z_]\w*)\(")
_STRING_METHODS = {"startswith", "endswith", "lower", "upper", "lstrip", "rstrip", "strip", "find", "rfind",
                   "index", "rindex", "split", "rsplit", "ljust", "rjust", "partition", "rpartition"}
_SKIP = (ast.Import, ast.ImportFrom, ast.Pass, ast.Global, ast.Nonlocal, ast.ClassDef, ast.FunctionDef,
         ast.AsyncFunctionDef)


def _feature(node: ast.AST, src: SourceFile) -> float:
    if isinstance(node, ast.Compare):
        return 1.0
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return {"range": 0.9, "min": 0.8, "max": 0.8, "len": 0.7}.get(name, 0.8 if name in _STRING_METHODS else 0.3)
    if isinstance(node, ast.Subscript | ast.BinOp | ast.AugAssign):
        return 0.8
    if isinstance(node, ast.BoolOp):
        return 0.7
    if isinstance(node, ast.If | ast.While | ast.IfExp):
        return 0.6
    if isinstance(node, ast.Return):
        return 0.5
    if isinstance(node, ast.Constant):
        return 0.5 if isinstance(node.value, bool) else 0.4 if isinstance(node.value, int) else 0.1
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return 0.7 if any(is_recursive_call(n, node.name) for n in ast.walk(node)) else 0.0
    return 0.2 if isinstance(node, ast.stmt | ast.Name) else 0.0


def static_lines(src: SourceFile) -> dict[int, float]:
    """Every line a mutation may apply to, with its static weight in (0, 1]."""
    key = ("static", 0)
    got = src.memo.get(key)
    if isinstance(got, dict):
        return got
    out: dict[int, float] = {}
    for line, nodes in sorted(src.by_line.items()):
        stmts = [n for n in nodes if isinstance(n, ast.stmt)]
        if stmts and all(isinstance(s, _SKIP) or _docstring(s) for s in stmts) and \
                not any(_feature(s, src) for s in stmts if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)):
            continue
        weights = sorted((_feature(n, src) for n in nodes), reverse=True)
        if not weights or weights[0] <= 0:
            continue
        weight = min(1.0, weights[0] + 0.05 * min(4, sum(1 for w in weights[1:] if w > 0)))
        if src.function_at(line) is None:
            weight *= 0.3
        out[line] = round(weight, 4)
    src.memo[key] = out
    return out


def _docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _frame(text: str) -> tuple[str, int] | None:
    path, _, line = text.rpartition(":")
    return (path, int(line)) if path and line.isdigit() else None


def _function_lines(src: SourceFile, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[int, float]:
    lines = static_lines(src)
    end = fn.end_lineno or fn.lineno
    return {line: w for line, w in lines.items() if fn.lineno <= line <= end}


_Fn = ast.FunctionDef | ast.AsyncFunctionDef


def _definitions(sources: Mapping[str, SourceFile]) -> dict[str, list[tuple[str, _Fn]]]:
    index: dict[str, list[tuple[str, _Fn]]] = defaultdict(list)
    for path, src in sources.items():
        for fn in src.functions():
            index[fn.name].append((path, fn))
    return index


def _called(node: ast.AST) -> list[str]:
    names: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            names.append(func.id if isinstance(func, ast.Name) else
                         func.attr if isinstance(func, ast.Attribute) else "")
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            names.append(sub.id)
    return [n for n in names if n]


def _test_function(files: Mapping[str, str], node_id: str) -> ast.AST | None:
    """The test's def, from a pytest node id or a unittest name (`tests.test_x.Case.test_y`)."""
    if "::" in node_id:
        path, *names = node_id.split("::")
    else:
        parts = node_id.split(".")
        split = next((i for i in range(len(parts) - 1, 0, -1) if "/".join(parts[:i]) + ".py" in files), None)
        if split is None:
            return None
        path, names = "/".join(parts[:split]) + ".py", parts[split:]
    src = load(files[path]) if path in files else None
    if src is None or not names:
        return None
    scope: ast.AST = src.tree
    for name in [*names[:-1], names[-1].split("[")[0]]:
        found = next((n for n in getattr(scope, "body", []) if isinstance(
            n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name), None)
        if found is None:
            return None
        scope = found
    return scope


def _suspects(files: Mapping[str, str], index: Mapping[str, list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]],
              failure: Failure) -> dict[tuple[str, int], tuple[ast.FunctionDef | ast.AsyncFunctionDef, float]]:
    """Editable functions a failing test with no editable frame exercises, with weights."""
    weights: dict[str, float] = {}
    for name in _CALLED.findall(failure.message):
        weights[name] = 1.0
    test = _test_function(files, failure.test)
    if test is not None:
        for name in _called(test):
            weights.setdefault(name, 0.8)
    found: dict[tuple[str, int], tuple[ast.FunctionDef | ast.AsyncFunctionDef, float]] = {}
    frontier = [(name, w) for name, w in weights.items()]
    for _depth in range(3):
        following: list[tuple[str, float]] = []
        for name, w in frontier:
            for path, fn in index.get(name, []):
                key = (path, fn.lineno)
                if key in found and found[key][1] >= w:
                    continue
                found[key] = (fn, w)
                following += [(callee, w * 0.7) for callee in set(_called(fn)) if callee != fn.name]
        frontier = following
    return found


def localise(files: Mapping[str, str], editable: Sequence[str],
             failures: Sequence[Failure]) -> list[tuple[str, int, float]]:
    """(path, line, suspicion in (0, 1]) for every candidate line of every editable file (and
    every failing frame in one), most suspicious first."""
    order = list(dict.fromkeys(p for p in editable if p in files))
    sources = {p: src for p in order if (src := load(files[p])) is not None}
    scores: dict[tuple[str, int], float] = defaultdict(float)
    index = _definitions(sources)
    grouped: dict[tuple[str, tuple[str, ...], str], list[str]] = {}
    for f in failures:  # a failing test (and traceback) votes as often as candidates reported it
        frames_ = tuple(f.frames)
        grouped.setdefault((f.test, frames_, "" if f.test or frames_ else f.message), []).append(f.message)
    for (test, frames, _), messages in grouped.items():
        located = [(p, line) for fr in frames if (got := _frame(fr)) and (p := got[0]) in sources
                   and 1 <= (line := got[1]) <= len(sources[p].starts)]
        if located:
            adds: dict[tuple[str, int], float] = {}
            for depth, (path, line) in enumerate(dict.fromkeys(reversed(located))):
                weight = 1.0 / (1 + depth)
                adds[(path, line)] = max(adds.get((path, line), 0.0), FRAME * weight)
                fn = sources[path].function_at(line)
                if fn is not None:
                    for other, w in _function_lines(sources[path], fn).items():
                        near = 1.0 / (1 + 0.05 * abs(other - line))
                        adds[(path, other)] = max(adds.get((path, other), 0.0), FUNCTION * weight * w * near)
        else:
            failure = Failure(test=test, message="\n".join(dict.fromkeys(messages)), frames=frames)
            adds = {}
            for (path, _), (fn, weight) in _suspects(files, index, failure).items():
                for other, w in _function_lines(sources[path], fn).items():
                    adds[(path, other)] = max(adds.get((path, other), 0.0), FUNCTION * weight * w)
        for key, value in adds.items():
            scores[key] += value * len(messages)
    for path in order:
        if path in sources:
            for line, w in static_lines(sources[path]).items():
                scores[(path, line)] += STATIC * w
    top = max(scores.values(), default=1.0) or 1.0
    rank = {p: i for i, p in enumerate(order)}
    ranked = sorted(scores.items(), key=lambda kv: (-round(kv[1], 9), rank[kv[0][0]], kv[0][1]))
    return [(path, line, round(score / top, 6)) for (path, line), score in ranked]
