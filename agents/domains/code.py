"""Code tasks: files, a test command, the files a candidate may edit. A candidate is a `Patch`;
the accepted one's answer is `{"patch": "<unified diff>", "files": {"path": "new content"}}`."""

from __future__ import annotations

import ast
import posixpath
from typing import ClassVar

from reverie.protocol import Artifact, Candidate, Patch, Task, artifact_of

from ..code.patch import apply_edits, changed_paths, unified_diff
from ..code.task import CodeInput, CodeInputError, parse_code
from .base import Domain, DomainInputError

__all__ = ["CodeDomain", "code_features"]


def code_features(task: CodeInput) -> frozenset[str]:
    """Similar code tasks share editable file names and the functions and classes defined in them."""
    feats = {"lang:python"} if any(p.endswith(".py") for p in task.files) else set()
    for path in task.editable_paths:
        feats.add(f"file:{posixpath.basename(path)}")
        if path.endswith(".py"):
            try:
                tree = ast.parse(task.files.get(path, ""))
            except (SyntaxError, ValueError):
                continue
            feats |= {f"def:{node.name}" for node in ast.walk(tree)
                      if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    return frozenset(feats)


class CodeDomain(Domain):
    kind: ClassVar[str] = "code"
    artifact: ClassVar[tuple[type[Artifact], ...]] = (Patch,)

    def parse(self, task: Task) -> CodeInput:
        try:
            return parse_code(task.input)
        except CodeInputError as exc:
            raise DomainInputError(self.kind, exc.path, exc.detail) from None

    def features(self, task: Task) -> frozenset[str]:
        return code_features(self.parse(task))

    def patience(self, task: Task, default: float) -> float:
        """A sandbox critic runs the task's tests, for up to its `timeout`, maybe after another run."""
        return max(default, 2 * self.parse(task).timeout + 10)

    def answer(self, task: Task, cand: Candidate, proposed: dict[str, object]) -> object:
        art = artifact_of(cand)
        if not isinstance(art, Patch):
            return proposed
        before = self.parse(task).files
        after = apply_edits(before, art.edits)
        return {"patch": unified_diff(before, after), "files": {p: after[p] for p in changed_paths(before, after)}}
