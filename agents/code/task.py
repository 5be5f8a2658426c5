"""A code task's input: the interface scripts submit against (`reverie submit --code` packs it).

    {"files": {"path": "content", ...}, "test": "python -m pytest -q", "editable": ["src/x.py"],
     "instruction": "make the failing tests pass", "timeout": 60}

`editable` defaults to every file that is not a test; a candidate may change only those.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated

import msgspec

from reverie.protocol import ReverieError

from ..plans.spec import split_validation_error

__all__ = ["DEFAULT_TEST", "MAX_FILES", "CodeInput", "CodeInputError", "editable_files", "is_test_file", "parse_code"]

DEFAULT_TEST = "python -m pytest -q"
MAX_FILES = 2_000

_TEST_NAME = re.compile(r"(^test_.*\.py$)|(^.*_test\.py$)|(^conftest\.py$)")


class CodeInputError(ReverieError):
    """A task input that is not a usable code task; `path` is the JSON path of the bad value."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class CodeInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    files: dict[str, str]
    test: Annotated[str, msgspec.Meta(min_length=1)] = DEFAULT_TEST
    editable: list[str] | None = None
    instruction: str = "make the failing tests pass"
    timeout: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0

    @property
    def editable_paths(self) -> list[str]:
        return editable_files(self)


def is_test_file(path: str) -> bool:
    """A test by its name or folder (`test_*.py`, `*_test.py`, `conftest.py`, under `tests/`)."""
    parts = path.split("/")
    return bool(_TEST_NAME.match(parts[-1])) or any(p in ("tests", "test") for p in parts[:-1])


def editable_files(task: CodeInput) -> list[str]:
    if task.editable is not None:
        return list(task.editable)
    return sorted(p for p in task.files if not is_test_file(p))


def _check_path(path: str, where: str) -> None:
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        raise CodeInputError(where, f"{path!r} is not a relative path")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        raise CodeInputError(where, f"{path!r} points outside the project")
    if norm != path:
        raise CodeInputError(where, f"{path!r} is not a normalised path (write {norm!r})")


def parse_code(value: object) -> CodeInput:
    """The input of a `code` task, checked: relative normalised paths, editable files that
    exist. Raises `CodeInputError` naming the field."""
    try:
        task = msgspec.convert(value, CodeInput)
    except msgspec.ValidationError as exc:
        raise CodeInputError(*split_validation_error(exc)) from None
    if not task.files:
        raise CodeInputError("$.files", "a code task needs at least one file")
    if len(task.files) > MAX_FILES:
        raise CodeInputError("$.files", f"{len(task.files)} files, more than the {MAX_FILES} a task may carry")
    for path in task.files:
        _check_path(path, f"$.files[{path!r}]")
    for i, path in enumerate(task.editable or ()):
        _check_path(path, f"$.editable[{i}]")
        if path not in task.files:
            raise CodeInputError(f"$.editable[{i}]", f"{path!r} is not one of the task's files")
    if not editable_files(task):
        raise CodeInputError("$.editable", "no file is editable (every file looks like a test; name them)")
    return task
