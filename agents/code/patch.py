"""Applying a candidate's edits to a code task's files, and the unified diff of the result.

The reasoner, the sandbox critic and the result share this one reading of an `Edit`, so they
can never disagree about what a candidate changes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from reverie.protocol import Edit, ReverieError

__all__ = ["PatchFailed", "apply_edits", "changed_paths", "unified_diff"]


class PatchFailed(ReverieError):
    """An edit that cannot be applied: `path` names its file, `why` what went wrong."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


def apply_edits(files: Mapping[str, str], edits: Sequence[Edit]) -> dict[str, str]:
    """The files after `edits`, in order. A search text must occur exactly once in its file;
    an edit without one replaces (or creates) the whole file."""
    out = dict(files)
    for edit in edits:
        if edit.search is None:
            out[edit.path] = edit.replace
            continue
        if edit.path not in out:
            raise PatchFailed(edit.path, "no such file")
        found = out[edit.path].count(edit.search) if edit.search else 0
        if found != 1:
            raise PatchFailed(edit.path, "the search text is empty" if not edit.search else
                              f"the search text occurs {found} times, not once")
        out[edit.path] = out[edit.path].replace(edit.search, edit.replace, 1)
    return out


def changed_paths(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    return sorted(p for p in after if before.get(p) != after[p])


def unified_diff(before: Mapping[str, str], after: Mapping[str, str]) -> str:
    """`git apply`-able diff of every changed file (a/ and b/ prefixes)."""
    chunks: list[str] = []
    for path in changed_paths(before, after):
        old = before.get(path)
        chunks += difflib.unified_diff(
            (old or "").splitlines(keepends=True), after[path].splitlines(keepends=True),
            fromfile=f"a/{path}" if old is not None else "/dev/null", tofile=f"b/{path}")
        if chunks and not chunks[-1].endswith("\n"):
            chunks[-1] += "\n\\ No newline at end of file\n"
    return "".join(chunks)
