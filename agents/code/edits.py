"""Exact, checked edits of Python source: a mutation replaces byte spans of the original text
(so formatting elsewhere is untouched) and is kept only if the edited file parses to exactly the
tree the mutation meant (the same change applied to the original's AST).
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

__all__ = ["Change", "Edit", "SourceFile", "load", "put", "set_attr", "set_item", "swap_items"]

Edit = tuple[int, int, str]
"""Replace the bytes [start, end) of the UTF-8 source with a text."""

_NEWLINE = re.compile(rb"\r\n|\r|\n")


@functools.lru_cache(maxsize=64)
def load(source: str) -> SourceFile | None:
    """The parsed file, or None when it does not parse (nothing can be mutated then)."""
    try:
        return SourceFile(source)
    except (SyntaxError, ValueError):
        return None


class SourceFile:
    """One parsed file: its tree, byte offsets of lines, parents and nodes by line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8")
        self.tree = ast.parse(text)
        self.starts = [0] + [m.end() for m in _NEWLINE.finditer(self.data)]
        nl = _NEWLINE.search(self.data)
        self.newline = nl.group().decode() if nl else "\n"
        self.parent: dict[int, tuple[ast.AST, str, int | None]] = {}
        self.by_line: dict[int, list[ast.AST]] = {}
        self.memo: dict[tuple[str, int], Any] = {}
        for node in ast.walk(self.tree):
            for field, value in ast.iter_fields(node):
                if isinstance(value, list):
                    for i, child in enumerate(value):
                        if isinstance(child, ast.AST):
                            self.parent[id(child)] = (node, field, i)
                elif isinstance(value, ast.AST):
                    self.parent[id(value)] = (node, field, None)
            if isinstance(node, ast.expr | ast.stmt):
                self.by_line.setdefault(node.lineno, []).append(node)
        self._functions = sorted(
            ((_first_line(n), n.end_lineno or n.lineno, n) for n in ast.walk(self.tree)
             if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), key=lambda t: (t[0], -t[1]))
        for nodes in self.by_line.values():
            nodes.sort(key=lambda n: (getattr(n, "col_offset", 0), -getattr(n, "end_col_offset", 0)))

    # positions ----------------------------------------------------------------------------

    def offset(self, lineno: int, col: int) -> int:
        return self.starts[lineno - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def segment(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.data[start:end].decode("utf-8")

    def between(self, left: ast.AST, right: ast.AST) -> tuple[int, str]:
        """The text between two sibling nodes (an operator, parens, spaces) and its offset."""
        start, end = self.span(left)[1], self.span(right)[0]
        return start, self.data[start:end].decode("utf-8")

    def token(self, left: ast.AST, right: ast.AST, pattern: re.Pattern[str]) -> tuple[int, int] | None:
        """The byte span of the first `pattern` match between two operands, comments skipped."""
        base, gap = self.between(left, right)
        masked = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), gap)
        m = pattern.search(masked)
        if m is None:
            return None
        return base + len(gap[:m.start()].encode()), base + len(gap[:m.end()].encode())

    def line_start(self, lineno: int) -> int:
        return self.starts[lineno - 1] if lineno <= len(self.starts) else len(self.data)

    def alone(self, node: ast.AST) -> bool:
        """Whether `node` is the only thing on its lines (comments aside)."""
        start, end = self.span(node)
        before = self.data[self.line_start(node.lineno):start]  # type: ignore[attr-defined]
        after = self.data[end:self.line_start(node.end_lineno + 1)]  # type: ignore[attr-defined]
        return not before.strip() and (not after.strip() or after.strip().startswith(b"#"))

    def line_text(self, lineno: int) -> str:
        end = self.starts[lineno] if lineno < len(self.starts) else len(self.data)
        return self.data[self.starts[lineno - 1]:end].decode("utf-8")

    # structure ----------------------------------------------------------------------------

    def parent_of(self, node: ast.AST) -> ast.AST | None:
        got = self.parent.get(id(node))
        return got[0] if got else None

    def enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        cur = self.parent_of(node)
        while cur is not None and not isinstance(cur, ast.FunctionDef | ast.AsyncFunctionDef):
            cur = self.parent_of(cur)
        return cur

    def function_at(self, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The innermost function whose span (decorators included) holds `line`."""
        best: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        for first, last, fn in self._functions:
            if first > line:
                break
            if line <= last:
                best = fn  # sorted by start: a later match is nested in an earlier one
        return best

    def functions(self) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
        for _, _, fn in self._functions:
            yield fn

    def replace(self, old: ast.AST, new: ast.AST | None) -> Callable[[], None]:
        """Put `new` where `old` is in the tree (None removes a list item); returns the undo."""
        parent, field, index = self.parent[id(old)]
        if index is None:
            setattr(parent, field, new)
            return lambda: setattr(parent, field, old)
        items: list[ast.AST] = getattr(parent, field)
        if new is None:
            del items[index]
            return lambda: items.insert(index, old)
        items[index] = new
        return lambda: items.__setitem__(index, old)

    # edits --------------------------------------------------------------------------------

    def path(self, node: ast.AST) -> list[tuple[str, int | None]]:
        """The (field, index) steps from the module down to `node`."""
        steps: list[tuple[str, int | None]] = []
        while (got := self.parent.get(id(node))) is not None:
            node, field, index = got
            steps.append((field, index))
        return steps[::-1]

    def _unit(self, anchor: ast.AST, steps: list[tuple[str, int | None]]) -> tuple[int, int, bytes, list[tuple[
            str, int | None]]] | None:
        """The smallest text that parses on its own around `anchor`: its innermost function or
        class (under an `if 1:` when indented), else its top-level statement. Returns the span,
        the header to put before it, and the steps from the snippet's module to `anchor`."""
        unit: ast.AST | None = anchor
        while unit is not None and not isinstance(unit, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            unit = self.parent_of(unit)
        if unit is None:
            if not steps or steps[0][0] != "body":
                return None
            unit = self.tree.body[steps[0][1] or 0]
        first = _first_line(unit) if isinstance(unit, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) \
            else unit.lineno
        lo, hi = self.line_start(first), self.line_start((unit.end_lineno or first) + 1)
        line = self.data[lo:hi].split(b"\n", 1)[0]
        indent = len(line) - len(line.lstrip(b" \t"))
        rest = steps[len(self.path(unit)):]
        if indent == 0:
            return lo, hi, b"", [("body", 0), *rest]
        if not line.lstrip().startswith((b"@", b"def", b"async", b"class")):
            return None
        return lo, hi, b"if 1:\n", [("body", 0), ("body", 0), *rest]

    def edit(self, edits: Sequence[Edit], change: Callable[[], Callable[[], None]], focus: ast.AST,
             wrap: ast.AST | None = None, scope: ast.AST | None = None) -> tuple[str, str, list[Edit]] | None:
        """Apply `edits` to the text; keep the result only if it parses to the original tree
        changed by `change` (which returns its undo). If it does not, try once more with the
        `wrap` node's new text in parentheses (operator precedence). Returns the new source,
        the new text of `focus`'s span and the edits that made it; or None.

        What is compared is the innermost statement around `focus` (or `scope`, when the change
        adds or removes statements of a body), parsed from the edited text of the top-level
        statement holding it: the rest of the file is byte for byte what already parsed."""
        anchor: ast.AST = scope if scope is not None else focus
        while not isinstance(anchor, ast.stmt) and (up := self.parent_of(anchor)) is not None:
            anchor = up
        steps = self.path(anchor)
        undo = change()
        try:
            expected = _dump(self.tree, steps)
        finally:
            undo()
        attempts = [sorted(edits, key=lambda e: (e[0], e[1]))]
        if wrap is not None:
            start, end = self.span(wrap)
            attempts.append(sorted([*edits, (start, start, "("), (end, end, ")")], key=lambda e: (e[0], e[1])))
        unit = self._unit(anchor, steps)
        fstart, fend = self.span(focus)
        for attempt in attempts:
            if unit is not None and all(unit[0] <= s and e <= unit[1] for s, e, _ in attempt):
                lo, hi, header, local = unit
                snippet = header + _apply(self.data[lo:hi], [(s - lo, e - lo, t) for s, e, t in attempt])
            else:
                snippet, local = _apply(self.data, attempt), steps
            try:
                if _dump(ast.parse(snippet), local) != expected:
                    continue
            except (SyntaxError, ValueError, AttributeError, IndexError, TypeError):
                continue
            inner = [(s - fstart, e - fstart, t) for s, e, t in attempt if fstart <= s and e <= fend]
            new_focus = _apply(self.data[fstart:fend], inner).decode("utf-8")
            return self.apply(attempt), new_focus, attempt
        return None

    def apply(self, edits: Sequence[Edit]) -> str:
        """The source with `edits` (sorted, not overlapping) applied."""
        return _apply(self.data, edits).decode("utf-8")


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def _dump(tree: ast.Module, steps: Sequence[tuple[str, int | None]]) -> str:
    node: ast.AST = tree
    for field, index in steps:
        node = getattr(node, field)
        if index is not None:
            node = node[index]  # type: ignore[index]
    return ast.dump(node)


def _apply(data: bytes, edits: Sequence[Edit]) -> bytes:
    out: list[bytes] = []
    pos = 0
    for start, end, text in edits:
        if start < pos:
            raise ValueError("overlapping edits")
        out += [data[pos:start], text.encode("utf-8")]
        pos = end
    out.append(data[pos:])
    return b"".join(out)


class Change(NamedTuple):
    """One candidate edit before it is checked: what it is, how likely, where, and the same
    change as a tree operation (returning its undo) to check the text edit against."""

    kind: str
    weight: float
    focus: ast.AST
    edits: list[Edit]
    change: Callable[[], Callable[[], None]]
    wrap: ast.AST | None = None
    description: str = ""
    """Overrides the default "`old` -> `new`" description (an inserted or removed statement)."""
    scope: ast.AST | None = None
    """The node whose body the change adds a statement to or removes one from."""


def set_attr(obj: ast.AST, name: str, value: object) -> Callable[[], Callable[[], None]]:
    def change() -> Callable[[], None]:
        old = getattr(obj, name)
        setattr(obj, name, value)
        return lambda: setattr(obj, name, old)
    return change


def set_item(items: list[Any], index: int, value: object) -> Callable[[], Callable[[], None]]:
    def change() -> Callable[[], None]:
        old = items[index]
        items[index] = value
        return lambda: items.__setitem__(index, old)
    return change


def swap_items(items: list[Any], i: int, j: int) -> Callable[[], Callable[[], None]]:
    def change() -> Callable[[], None]:
        items[i], items[j] = items[j], items[i]

        def undo() -> None:
            items[i], items[j] = items[j], items[i]
        return undo
    return change


def put(src: SourceFile, old: ast.AST, new: ast.AST | None) -> Callable[[], Callable[[], None]]:
    return lambda: src.replace(old, new)
