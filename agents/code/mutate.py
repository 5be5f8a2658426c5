"""The mutation catalogue: every small, likely bug fix that applies to one line of a file.

Kinds: `comparison` (`<` `<=` `>` `>=` `==` `!=`, `is`/`is not`, `in`/`not in`), `arithmetic`
(`+ - * / // % **` and their augmented assignments), `off-by-one` (int constants +-1, `range`
bounds, indexes and slice bounds +-1, `len(x)` <-> `len(x) - 1`, `e +- 1` -> `e`), `swap-arguments`
(adjacent positional arguments of a call, operands of a non-commutative operator), `negation`
(`if`/`while`/ternary/comprehension conditions, `and` <-> `or`), `variable` (a local replaced by
another local of the same kind used nearby), `constant` (`True` <-> `False`), `min-max`,
`string-method` (`startswith`/`endswith`, `lower`/`upper`, `lstrip`/`rstrip`, `find`/`rfind`...),
`base-case` (a guard inserted at the top of a recursive function) and `remove-increment`
(`return e + 1` -> `return e`, a stray `i += 1` removed).

Each mutation edits the exact source span of one AST node (formatting elsewhere is untouched)
and is kept only if the edited file parses to the intended tree (`edits.SourceFile.edit`).
Expression-level families live here; those that need the enclosing function (a wrong variable,
a missing base case, a stray statement) in `scoped`.
"""

from __future__ import annotations

import ast
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator

import msgspec

from .edits import Change, Edit, SourceFile, load, put, set_attr, set_item, swap_items
from .scoped import base_cases, dropped_operand, removed_increments, wrong_variables

__all__ = ["KINDS", "KIND_PRIOR", "Mutation", "mutations"]

KIND_PRIOR: dict[str, float] = {
    "comparison": 1.0, "off-by-one": 0.95, "base-case": 0.9, "arithmetic": 0.8, "min-max": 0.8,
    "string-method": 0.8, "negation": 0.75, "constant": 0.7, "remove-increment": 0.65,
    "swap-arguments": 0.55, "variable": 0.45,
}
"""How often each kind is the fix, before anything is known about the bug."""

KINDS = tuple(KIND_PRIOR)


class Mutation(msgspec.Struct, frozen=True, kw_only=True):
    """One edit of one line of one file."""

    path: str
    line: int
    kind: str
    """One of `KINDS`."""
    description: str
    """What changed, e.g. "line 12: `i < n` -> `i <= n`"."""
    new_source: str
    """The whole file after the edit."""
    prior: float = 1.0
    """The kind's prior times this alternative's own likelihood (what `mutations` sorts by)."""


_CMP = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_CMP_ALT: dict[type[ast.cmpop], list[tuple[type[ast.cmpop], float]]] = {
    ast.Lt: [(ast.LtE, 1.0), (ast.Gt, 0.6), (ast.GtE, 0.5), (ast.NotEq, 0.35), (ast.Eq, 0.3)],
    ast.LtE: [(ast.Lt, 1.0), (ast.GtE, 0.6), (ast.Gt, 0.5), (ast.Eq, 0.35), (ast.NotEq, 0.3)],
    ast.Gt: [(ast.GtE, 1.0), (ast.Lt, 0.6), (ast.LtE, 0.5), (ast.NotEq, 0.35), (ast.Eq, 0.3)],
    ast.GtE: [(ast.Gt, 1.0), (ast.LtE, 0.6), (ast.Lt, 0.5), (ast.Eq, 0.35), (ast.NotEq, 0.3)],
    ast.Eq: [(ast.NotEq, 1.0), (ast.LtE, 0.4), (ast.GtE, 0.4), (ast.Lt, 0.3), (ast.Gt, 0.3)],
    ast.NotEq: [(ast.Eq, 1.0), (ast.Lt, 0.4), (ast.Gt, 0.4), (ast.LtE, 0.3), (ast.GtE, 0.3)],
    ast.Is: [(ast.IsNot, 1.0), (ast.Eq, 0.3)], ast.IsNot: [(ast.Is, 1.0), (ast.NotEq, 0.3)],
    ast.In: [(ast.NotIn, 1.0)], ast.NotIn: [(ast.In, 1.0)],
}
_CMP_TOKEN = re.compile(r"is\s+not\b|not\s+in\b|<=|>=|==|!=|<|>|\bis\b|\bin\b")

_BIN = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}
_BIN_ALT: dict[type[ast.operator], list[tuple[type[ast.operator], float]]] = {
    ast.Add: [(ast.Sub, 1.0), (ast.Mult, 0.6)],
    ast.Sub: [(ast.Add, 1.0), (ast.FloorDiv, 0.2)],
    ast.Mult: [(ast.Add, 0.6), (ast.FloorDiv, 0.5), (ast.Div, 0.45), (ast.Pow, 0.35), (ast.Sub, 0.3)],
    ast.Div: [(ast.FloorDiv, 1.0), (ast.Mult, 0.6), (ast.Mod, 0.3)],
    ast.FloorDiv: [(ast.Div, 1.0), (ast.Mod, 0.7), (ast.Mult, 0.4)],
    ast.Mod: [(ast.FloorDiv, 0.8), (ast.Div, 0.4)],
    ast.Pow: [(ast.Mult, 1.0)],
}
_BIN_TOKEN = re.compile(r"\*\*|//|[-+*/%]")
_AUG_TOKEN = re.compile(r"(\*\*|//|[-+*/%])=")
_NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift)
_NO_SWAP = {"print", "min", "max", "isinstance", "getattr", "setattr", "hasattr", "super"}
_LOW = (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr, ast.Compare, ast.UnaryOp, ast.Await, ast.Yield)
_STRING_ALT: dict[str, list[tuple[str, float]]] = {
    "startswith": [("endswith", 1.0)], "endswith": [("startswith", 1.0)],
    "lower": [("upper", 1.0), ("casefold", 0.2)], "upper": [("lower", 1.0)],
    "lstrip": [("rstrip", 1.0), ("strip", 0.6)], "rstrip": [("lstrip", 1.0), ("strip", 0.6)],
    "strip": [("lstrip", 0.6), ("rstrip", 0.6)],
    "find": [("rfind", 1.0)], "rfind": [("find", 1.0)], "index": [("rindex", 0.8)], "rindex": [("index", 0.8)],
    "split": [("rsplit", 0.5)], "rsplit": [("split", 0.5)], "ljust": [("rjust", 1.0)], "rjust": [("ljust", 1.0)],
    "partition": [("rpartition", 0.8)], "rpartition": [("partition", 0.8)],
    "isupper": [("islower", 1.0)], "islower": [("isupper", 1.0)], "isdigit": [("isalpha", 0.5)],
    "isalpha": [("isdigit", 0.5), ("isalnum", 0.5)], "title": [("capitalize", 0.5)], "capitalize": [("title", 0.5)],
}


def mutations(path: str, source: str, line: int) -> list[Mutation]:
    """Every catalogue mutation applicable to `line` of `source`, most likely first; [] if the
    file does not parse. Deterministic; no two share a resulting file."""
    src = load(source)
    if src is None:
        return []
    return [Mutation(path=path, line=line, kind=kind, description=f"line {line}: {text}",
                     new_source=src.apply(edits), prior=prior) for kind, prior, text, edits in _catalogue(source, line)]


_Entry = tuple[str, float, str, tuple[Edit, ...]]
_CACHE: OrderedDict[tuple[bytes, int], tuple[_Entry, ...]] = OrderedDict()
_CACHE_MAX = 8192
_LOCK = threading.Lock()


def _catalogue(source: str, line: int) -> tuple[_Entry, ...]:
    """The checked mutations of one line as (kind, prior, description, edits): edits, not whole
    files, so many lines of many versions stay cached (keyed by the source's digest)."""
    key = (hashlib.sha256(source.encode("utf-8", "surrogatepass")).digest(), line)
    with _LOCK:
        got = _CACHE.get(key)
        if got is not None:
            _CACHE.move_to_end(key)
            return got
    got = _build(source, line)
    with _LOCK:
        _CACHE[key] = got
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return got


def _build(source: str, line: int) -> tuple[_Entry, ...]:
    src = load(source)
    if src is None:
        return ()
    changes: list[Change] = []
    for node in src.by_line.get(line, []):
        for family in (_comparison, _arithmetic, _off_by_one, _negation, _constant, _calls, _swap_operands):
            changes.extend(family(src, node))
    changes.extend(base_cases(src, line))
    changes.extend(removed_increments(src, line))
    changes.extend(wrong_variables(src, line))
    found: dict[str, _Entry] = {}
    for change in changes:
        focus = change.focus
        while len(src.segment(focus)) < 12 and isinstance(parent := src.parent_of(focus), ast.expr) and \
                parent.lineno == line:
            focus = parent  # `a` -> `b` says little: `max(a, b)` -> `max(b, b)`
        got = src.edit(change.edits, change.change, focus, change.wrap, change.scope)
        if got is None or got[0] == source:
            continue
        new_source, new_text, edits = got
        text = change.description or f"`{_short(src.segment(focus))}` -> `{_short(new_text)}`"
        prior = round(KIND_PRIOR[change.kind] * change.weight, 6)
        if new_source not in found or found[new_source][1] < prior:
            found[new_source] = (change.kind, prior, text, tuple(edits))
    order = {key: i for i, key in enumerate(found)}
    return tuple(found[key] for key in sorted(found, key=lambda key: (-found[key][1], order[key])))


def _short(text: str, limit: int = 72) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _comparison(src: SourceFile, node: ast.AST) -> Iterator[Change]:
    if not isinstance(node, ast.Compare):
        return
    operands = [node.left, *node.comparators]
    for i, op in enumerate(node.ops):
        span = src.token(operands[i], operands[i + 1], _CMP_TOKEN)
        if span is None:
            continue
        for alt, weight in _CMP_ALT.get(type(op), []):
            yield Change("comparison", weight, node, [(*span, _CMP[alt])], set_item(node.ops, i, alt()))


def _arithmetic(src: SourceFile, node: ast.AST) -> Iterator[Change]:
    if isinstance(node, ast.BinOp):
        span = src.token(node.left, node.right, _BIN_TOKEN)
        if span is not None:
            for alt, weight in _BIN_ALT.get(type(node.op), []):
                yield Change("arithmetic", weight, node, [(*span, _BIN[alt])], set_attr(node, "op", alt()), wrap=node)
    elif isinstance(node, ast.AugAssign):
        span = src.token(node.target, node.value, _AUG_TOKEN)
        if span is not None:
            for alt, weight in _BIN_ALT.get(type(node.op), []):
                yield Change("arithmetic", weight, node, [(*span, _BIN[alt] + "=")], set_attr(node, "op", alt()))


def _int(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _plus_minus_one(node: ast.AST) -> bool:
    """`e + 1`, `e - 1` (any int constant): its constant is what to adjust, not the whole."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub) and _int(node.right)


def _shifted(src: SourceFile, expr: ast.expr, delta: int, weight: float, kind: str = "off-by-one") -> Change:
    """`expr` -> `expr + 1` / `expr - 1`."""
    text = src.segment(expr)
    text = f"({text})" if isinstance(expr, _LOW) else text
    new = ast.BinOp(left=expr, op=ast.Add() if delta > 0 else ast.Sub(), right=ast.Constant(value=abs(delta)))
    sign = "+" if delta > 0 else "-"
    edit = (*src.span(expr), f"{text} {sign} {abs(delta)}")
    return Change(kind, weight, expr, [edit], put(src, expr, new), wrap=expr)


def _statement_level(src: SourceFile, node: ast.AST) -> bool:
    parent = src.parent_of(node)
    return isinstance(parent, ast.Return | ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Expr)


def _off_by_one(src: SourceFile, node: ast.AST) -> Iterator[Change]:
    parent = src.parent_of(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        value = node.value
        if isinstance(parent, ast.BinOp) and parent.right is node and isinstance(parent.op, ast.Add | ast.Sub):
            alts = [(value + 1, 0.8)] + ([(value - 1, 0.7)] if value > 1 else [])  # `e - 0`: the drop below
        else:
            alts = [(value - 1, 1.0), (value + 1, 0.9)] if value > 0 else [(1, 1.0), (-1, 0.6)]
        scale = 1.0 if value <= 10 else 0.3
        for new_value, weight in alts:
            new: ast.expr = ast.Constant(value=new_value) if new_value >= 0 else \
                ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-new_value))
            yield Change("off-by-one", weight * scale, node, [(*src.span(node), str(new_value))],
                         put(src, node, new), wrap=node)
    if _plus_minus_one(node) and isinstance(node, ast.BinOp) and not _statement_level(src, node):
        drop = dropped_operand(src, node)  # `e + 1` -> `e` (the statement-level one is "remove-increment")
        if drop is not None:
            yield Change("off-by-one", 1.0, node, [drop], put(src, node, node.left), wrap=node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "range" and not node.keywords:
            for arg in node.args[:2]:
                if not _int(arg) and not _plus_minus_one(arg) and not isinstance(arg, ast.Starred):
                    yield _shifted(src, arg, +1, 1.0)
                    yield _shifted(src, arg, -1, 0.9)
        if node.func.id == "len" and len(node.args) == 1 and not (isinstance(parent, ast.BinOp) and
                                                                   _plus_minus_one(parent) and parent.left is node):
            yield _shifted(src, node, -1, 0.9)
            yield _shifted(src, node, +1, 0.4)
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load | ast.Store):
        index = node.slice
        if isinstance(index, ast.Slice):
            for bound, weight in ((index.lower, 0.8), (index.upper, 0.75)):
                if bound is not None and not _int(bound) and not _plus_minus_one(bound) and \
                        not isinstance(bound, ast.UnaryOp):
                    yield _shifted(src, bound, -1, weight)
                    yield _shifted(src, bound, +1, weight * 0.9)
            start, end = src.span(index)
            if index.lower is None:
                yield Change("off-by-one", 0.4, node, [(start, start, "1")],
                             set_attr(index, "lower", ast.Constant(value=1)))
            if index.upper is None and index.step is None and src.data[end - 1:end] == b":":
                yield Change("off-by-one", 0.4, node, [(end, end, "-1")], set_attr(
                    index, "upper", ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=1))))
        elif not isinstance(index, ast.Constant | ast.Tuple | ast.UnaryOp) and not _plus_minus_one(index):
            yield _shifted(src, index, -1, 1.0)
            yield _shifted(src, index, +1, 0.9)


def _negated(src: SourceFile, test: ast.expr, weight: float) -> Change:
    start, end = src.span(test)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return Change("negation", weight, test, [(start, src.span(test.operand)[0], "")], put(src, test, test.operand))
    if isinstance(test, ast.BoolOp | ast.IfExp | ast.Lambda | ast.NamedExpr):
        edits = [(start, start, "not ("), (end, end, ")")]
    else:
        edits = [(start, start, "not ")]
    return Change("negation", weight, test, edits, put(src, test, ast.UnaryOp(op=ast.Not(), operand=test)), wrap=test)


def _negation(src: SourceFile, node: ast.AST) -> Iterator[Change]:
    if isinstance(node, ast.If | ast.While | ast.IfExp):
        simple = isinstance(node.test, ast.Compare) and len(node.test.ops) == 1
        yield _negated(src, node.test, 0.5 if simple else 1.0)
    if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
        for gen in node.generators:
            for cond in gen.ifs:
                yield _negated(src, cond, 0.8)
    if isinstance(node, ast.BoolOp):
        new_op = "or" if isinstance(node.op, ast.And) else "and"
        pattern = re.compile(r"\band\b" if new_op == "or" else r"\bor\b")
        edits = []
        for left, right in zip(node.values, node.values[1:], strict=False):
            span = src.token(left, right, pattern)
            if span is None:
                return
            edits.append((*span, new_op))
        yield Change("negation", 0.9, node, edits, set_attr(node, "op", ast.Or() if new_op == "or" else ast.And()),
                     wrap=node)


def _constant(src: SourceFile, node: ast.AST) -> Iterator[Change]:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        flipped = not node.value
        yield Change("constant", 1.0, node, [(*src.span(node), str(flipped))], set_attr(node, "value", flipped))


def _calls(src: SourceFile, node: ast.AST) -> Iterator[Change]:
    if not isinstance(node, ast.Call):
        return
    func = node.func
    if isinstance(func, ast.Name) and func.id in ("min", "max"):
        other = "max" if func.id == "min" else "min"
        new = ast.Name(id=other, ctx=ast.Load())
        yield Change("min-max", 1.0, node, [(*src.span(func), other)], put(src, func, new))
    if isinstance(func, ast.Attribute) and func.attr in _STRING_ALT:
        end = src.span(func)[1]
        start = end - len(func.attr.encode())
        for alt, weight in _STRING_ALT[func.attr]:
            yield Change("string-method", weight, node, [(start, end, alt)], set_attr(func, "attr", alt))
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    args = node.args
    if name not in _NO_SWAP and len(args) >= 2 and not any(isinstance(a, ast.Starred) for a in args) and \
            not (len(args) == 1 and isinstance(args[0], ast.GeneratorExp)):
        for i in range(len(args) - 1):
            a, b = args[i], args[i + 1]
            edits = [(*src.span(a), src.segment(b)), (*src.span(b), src.segment(a))]
            yield Change("swap-arguments", 1.0 if i == 0 else 0.8, node, edits, swap_items(args, i, i + 1))


def _outer(src: SourceFile, node: ast.expr, within: ast.expr) -> tuple[int, int]:
    """The span of `node` with the parentheses around it that lie inside `within`."""
    start, end = src.span(node)
    lo, hi = src.span(within)
    while True:
        before = src.data[lo:start].rstrip(b" \t")
        after_gap = len(src.data[end:hi]) - len(src.data[end:hi].lstrip(b" \t"))
        if not (before.endswith(b"(") and src.data[end + after_gap:end + after_gap + 1] == b")"):
            return start, end
        start, end = lo + len(before) - 1, end + after_gap + 1


def _operand(src: SourceFile, node: ast.expr, span: tuple[int, int]) -> str:
    text = src.data[span[0]:span[1]].decode("utf-8")
    atomic = ast.Name | ast.Constant | ast.Call | ast.Attribute | ast.Subscript | ast.List | ast.Tuple | ast.Dict
    return text if isinstance(node, atomic) or span != src.span(node) else f"({text})"


def _swap_operands(src: SourceFile, node: ast.AST) -> Iterator[Change]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, _NON_COMMUTATIVE):
        left, right = _outer(src, node.left, node), _outer(src, node.right, node)
        edits = [(*left, _operand(src, node.right, right)), (*right, _operand(src, node.left, left))]

        def change() -> Callable[[], None]:
            node.left, node.right = node.right, node.left

            def undo() -> None:
                node.left, node.right = node.right, node.left
            return undo
        yield Change("swap-arguments", 0.8, node, edits, change, wrap=node)
