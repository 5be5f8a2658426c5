"""Mutations that need the enclosing function: a wrong variable (another local of the same kind
used nearby), a missing base case of a recursive function, a stray `+ 1`/`- 1` statement."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from typing import TypeGuard

from .edits import Change, Edit, SourceFile, put, set_attr

__all__ = ["Scope", "base_cases", "dropped_operand", "is_recursive_call", "removed_increments", "scope",
           "wrong_variables"]

_BIN_TOKEN = re.compile(r"\*\*|//|[-+*/%]")
_SEQ_FUNCS = {"len", "sorted", "reversed", "enumerate", "list", "set", "tuple", "sum", "iter", "zip", "any", "all"}
_SEQ_LITERALS = (ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp, ast.JoinedStr)
_NUM_OPS = (ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_GUARDS_NUM = [("{p} <= 1", "{p}"), ("{p} == 0", "1"), ("{p} <= 1", "1"), ("{p} == 0", "0"), ("{p} <= 0", "0"),
               ("not {p}", "{p}")]
_GUARDS_SEQ = [("not {p}", "{p}"), ("len({p}) <= 1", "{p}"), ("not {p}", "0"), ("not {p}", "[]")]
_RANKS = (1.0, 0.8, 0.65, 0.5)


class Scope:
    """The locals of one function: where each is used, what kind of value it seems to hold
    ("num", "seq"), which are called."""

    def __init__(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        a = fn.args
        self.params = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)] + \
            [x.arg for x in (a.vararg, a.kwarg) if x is not None]
        self.uses: dict[str, list[int]] = {p: [fn.lineno] for p in self.params}
        self.kinds: dict[str, set[str]] = {}
        self.called: set[str] = set()
        stored = set(self.params)
        for node in ast.walk(fn):
            if isinstance(node, ast.Name):
                self.uses.setdefault(node.id, []).append(node.lineno)
                if isinstance(node.ctx, ast.Store):
                    stored.add(node.id)
            self._infer(node)
        self.locals = {n: sorted(lines) for n, lines in self.uses.items()
                       if n in stored and n not in self.called and n not in ("self", "cls")}

    def _mark(self, node: ast.AST | None, kind: str) -> None:
        if isinstance(node, ast.Name):
            self.kinds.setdefault(node.id, set()).add(kind)

    def _infer(self, node: ast.AST) -> None:
        if isinstance(node, ast.Subscript):
            self._mark(node.value, "seq")
            for bound in (node.slice.lower, node.slice.upper) if isinstance(node.slice, ast.Slice) else (node.slice,):
                self._mark(bound, "num")
        elif isinstance(node, ast.Call):
            self._mark(node.func, "callable")
            if isinstance(node.func, ast.Name):
                self.called.add(node.func.id)
                if node.func.id in _SEQ_FUNCS and node.args:
                    self._mark(node.args[0], "seq")
                if node.func.id == "range":
                    for arg in node.args:
                        self._mark(arg, "num")
            elif isinstance(node.func, ast.Attribute):
                self._mark(node.func.value, "seq")
        elif isinstance(node, ast.For | ast.comprehension):
            ranged = isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Name) and \
                node.iter.func.id == "range"
            self._mark(node.target, "num" if ranged else "any")
            self._mark(node.iter, "any" if ranged else "seq")
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign) and node.value is not None:
            kind = _value_kind(node.value)
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if kind:
                    self._mark(target, kind)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, _NUM_OPS):
            self._mark(node.left, "num")
            self._mark(node.right, "num")
        elif isinstance(node, ast.Compare) and any(isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE)
                                                   for op in node.ops):
            for operand in (node.left, *node.comparators):
                self._mark(operand, "num")

    def compatible(self, a: str, b: str) -> bool:
        ka = self.kinds.get(a, set()) - {"any"}
        kb = self.kinds.get(b, set()) - {"any"}
        return not ka or not kb or bool(ka & kb)

    def distance(self, name: str, line: int) -> int:
        return min(abs(u - line) for u in self.locals[name])


def scope(src: SourceFile, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Scope:
    key = ("scope", fn.lineno)
    got = src.memo.get(key)
    if not isinstance(got, Scope):
        got = src.memo[key] = Scope(fn)
    return got


def _value_kind(value: ast.expr) -> str:
    if isinstance(value, ast.Constant):
        return "num" if isinstance(value.value, int | float) and not isinstance(value.value, bool) else \
            "seq" if isinstance(value.value, str | bytes) else ""
    if isinstance(value, _SEQ_LITERALS):
        return "seq"
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ("len", "int", "sum"):
        return "num"
    return ""


def dropped_operand(src: SourceFile, node: ast.BinOp) -> Edit | None:
    """The edit that turns `e + 1` into `e` (the operator, the right operand, the spaces)."""
    span = src.token(node.left, node.right, _BIN_TOKEN)
    if span is None:
        return None
    start = span[0]
    while start > src.span(node.left)[1] and src.data[start - 1:start] in (b" ", b"\t"):
        start -= 1
    return start, src.span(node)[1], ""


def is_recursive_call(node: ast.AST, name: str) -> TypeGuard[ast.Call]:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == name) or (
        isinstance(func, ast.Attribute) and func.attr == name and isinstance(func.value, ast.Name)
        and func.value.id in ("self", "cls"))


def wrong_variables(src: SourceFile, line: int) -> Iterator[Change]:
    fn = src.function_at(line)
    if fn is None or line == fn.lineno:
        return
    sc = scope(src, fn)
    for node in src.by_line.get(line, []):
        if not isinstance(node, ast.Name) or node.id not in sc.locals or src.enclosing_function(node) is not fn:
            continue
        parent = src.parent_of(node)
        aug = isinstance(parent, ast.AugAssign) and parent.target is node
        if not (isinstance(node.ctx, ast.Load) or aug):
            continue
        alts = sorted((c for c in sc.locals if c != node.id and sc.compatible(node.id, c)),
                      key=lambda c: (sc.distance(c, line), c))
        for rank, other in enumerate(alts[:len(_RANKS)]):
            weight = _RANKS[rank] * (1.0 if sc.locals[other][0] <= line else 0.3) * (0.6 if aug else 1.0)
            yield Change("variable", weight, node, [(*src.span(node), other)], set_attr(node, "id", other))


def _decreasing(fn: ast.FunctionDef | ast.AsyncFunctionDef, params: list[str]) -> list[str]:
    """Parameters a recursive call passes on smaller (`n - 1`, `xs[1:]`), first."""
    shrinking: list[str] = []
    for call in ast.walk(fn):
        if not is_recursive_call(call, fn.name):
            continue
        for arg in call.args:
            base = arg.left if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Sub | ast.FloorDiv | ast.RShift) \
                else arg.value if isinstance(arg, ast.Subscript) and isinstance(arg.slice, ast.Slice) else None
            if isinstance(base, ast.Name) and base.id in params and base.id not in shrinking:
                shrinking.append(base.id)
    return shrinking + [p for p in params if p not in shrinking]


def base_cases(src: SourceFile, line: int) -> Iterator[Change]:
    """For a recursive function, on its `def` line or a line with the recursive call: a guard
    inserted at the top of its body (after a docstring)."""
    fn = src.function_at(line)
    if fn is None:
        return
    key = ("recursive-calls", fn.lineno)
    if key not in src.memo:
        src.memo[key] = frozenset(n.lineno for n in ast.walk(fn) if is_recursive_call(n, fn.name))
    calls: frozenset[int] = src.memo[key]
    if not calls or (line not in calls and line != fn.lineno):
        return
    body = fn.body
    index = 1 if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
        isinstance(body[0].value.value, str) else 0
    if index >= len(body) or not src.alone(body[index]) or body[index].lineno == fn.lineno:
        return
    first = body[index]
    start = src.line_start(first.lineno)
    indent = src.data[start:src.offset(first.lineno, first.col_offset)].decode()
    def_line = src.line_text(fn.lineno)
    outer = def_line[:len(def_line) - len(def_line.lstrip())]
    unit = indent[len(outer):] if indent.startswith(outer) and len(indent) > len(outer) else "    "
    params = [p for p in fn.args.posonlyargs + fn.args.args if p.arg not in ("self", "cls")]
    ranked = _decreasing(fn, [p.arg for p in params])
    sc = scope(src, fn)
    nl = src.newline
    for order, param in enumerate(ranked[:2]):
        kinds = sc.kinds.get(param, set())
        family = _GUARDS_NUM if "num" in kinds and "seq" not in kinds else _GUARDS_SEQ if "seq" in kinds else \
            [g for pair in zip(_GUARDS_SEQ, _GUARDS_NUM, strict=False) for g in pair] + _GUARDS_NUM[len(_GUARDS_SEQ):]
        seen: set[tuple[str, str]] = set()
        for rank, (cond, value) in enumerate(family):
            if (cond, value) in seen:
                continue
            seen.add((cond, value))
            cond_text, value_text = cond.format(p=param), value.format(p=param)
            text = f"{indent}if {cond_text}:{nl}{indent}{unit}return {value_text}{nl}"
            guard = ast.parse(f"if {cond_text}:\n    return {value_text}\n").body[0]
            weight = max(0.3, 1.0 - 0.1 * rank) * (1.0 if order == 0 else 0.6)
            yield Change("base-case", weight, fn, [(start, start, text)], _insert(body, index, guard),
                         description=f"insert `if {cond_text}: return {value_text}` at the top of `{fn.name}`")


def _insert(body: list[ast.stmt], index: int, stmt: ast.stmt) -> Callable[[], Callable[[], None]]:
    def change() -> Callable[[], None]:
        body.insert(index, stmt)

        def undo() -> None:
            del body[index]
        return undo
    return change


def removed_increments(src: SourceFile, line: int) -> Iterator[Change]:
    """`return e + 1` -> `return e` (any statement whose value is `e ± int`); `i += 1` removed."""
    for node in src.by_line.get(line, []):
        if isinstance(node, ast.Return | ast.Assign | ast.AnnAssign | ast.AugAssign | ast.Expr):
            value = node.value
            if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add | ast.Sub) and \
                    isinstance(value.right, ast.Constant) and type(value.right.value) is int:
                drop = dropped_operand(src, value)
                if drop is not None:
                    yield Change("remove-increment", 1.0, value, [drop], put(src, value, value.left), wrap=value)
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add | ast.Sub) and \
                isinstance(node.value, ast.Constant) and type(node.value.value) is int and src.alone(node):
            got = src.parent.get(id(node))
            if got is None or got[2] is None:
                continue
            siblings = getattr(got[0], got[1])
            text = src.segment(node)
            if len(siblings) == 1:
                yield Change("remove-increment", 0.7, node, [(*src.span(node), "pass")], put(src, node, ast.Pass()),
                             description=f"`{text}` -> `pass`", scope=got[0])
            else:
                span = (src.line_start(node.lineno), src.line_start((node.end_lineno or node.lineno) + 1))
                yield Change("remove-increment", 0.7, node, [(*span, "")], put(src, node, None),
                             description=f"remove `{text}`", scope=got[0])
