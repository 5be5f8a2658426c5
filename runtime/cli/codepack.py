"""`reverie submit --code DIR`: a local project folder packed as a code task's input, and the
accepted patch written back with `--apply` once the project's tests pass with it.

Packing follows the folder's `.gitignore` files (each applies below its own folder, as git
reads them; `pathspec` implements git's matching rules) and always leaves out `.git`,
virtualenvs and caches. Binary files are left out too: a code task carries text.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pathspec

from reverie.protocol import ReverieError

from ..sandbox import RunOutcome, Sandbox, SandboxLimits, write_tree

__all__ = ["ALWAYS_SKIPPED", "MAX_PACK_BYTES", "CodePackError", "apply_answer", "pack_folder", "verify_answer"]

MAX_PACK_BYTES = 4 * 1024 * 1024
"""A packed folder larger than this is refused (a task travels in one bus message)."""

ALWAYS_SKIPPED = frozenset({".git", ".hg", ".svn", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache",
                            ".ruff_cache", "node_modules", ".tox", ".eggs"})


class CodePackError(ReverieError):
    """A folder that cannot be sent as a code task, or a patch that cannot be applied to it."""


def _files(root: Path) -> Iterator[Path]:
    """Every file under `root` that no `.gitignore` on its way ignores, in a stable order."""
    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        ignore = here / ".gitignore"
        if ignore.is_file():
            specs.append((here, pathspec.GitIgnoreSpec.from_lines(ignore.read_text(errors="replace").splitlines())))

        def ignored(path: Path, is_dir: bool) -> bool:
            for base, spec in specs:
                if base == path or base in path.parents:
                    rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
                    if spec.match_file(rel):
                        return True
            return False

        dirs[:] = sorted(d for d in dirs if d not in ALWAYS_SKIPPED and not ignored(here / d, True))
        for name in sorted(names):
            path = here / name
            if not path.is_symlink() and not ignored(path, False):
                yield path


def pack_folder(root: Path, *, test: str, edit: Sequence[str] = (), instruction: str = "",
                timeout: float = 60.0, max_bytes: int = MAX_PACK_BYTES) -> dict[str, Any]:
    """The code task input for the project in `root`. Raises `CodePackError` (too large, no
    text file, an `edit` path that is not packed)."""
    if not root.is_dir():
        raise CodePackError(f"{root} is not a folder")
    files: dict[str, str] = {}
    total = 0
    for path in _files(root):
        data = path.read_bytes()
        total += len(data)
        if total > max_bytes:
            raise CodePackError(f"{root} packs to more than {max_bytes:,} bytes (the limit for a code task): "
                                f"list what to leave out in a .gitignore")
        try:
            files[path.relative_to(root).as_posix()] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # binary: a code task carries text
    if not files:
        raise CodePackError(f"{root} has no text file to send")
    for p in edit:
        if p not in files:
            raise CodePackError(f"--edit {p}: no such file in {root} (or it is ignored)")
    task: dict[str, Any] = {"files": files, "test": test, "timeout": timeout}
    if edit:
        task["editable"] = list(edit)
    if instruction:
        task["instruction"] = instruction
    return task


def _changed(answer: object) -> dict[str, str]:
    files = answer.get("files") if isinstance(answer, dict) else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise CodePackError("the result's answer carries no files to apply")
    for path in files:
        if path.startswith("/") or ".." in Path(path).parts:
            raise CodePackError(f"the answer names a file outside the folder: {path!r}")
    return files


async def verify_answer(root: Path, answer: object, *, test: str, seconds: float,
                        sandbox: Sandbox | None = None) -> RunOutcome:
    """Run `test` in a sandbox (for at most `seconds`) on a copy of `root` with the answer's files written over it."""
    files = _changed(answer)
    box = sandbox or Sandbox(limits=SandboxLimits(timeout=seconds))
    await box.check()
    with tempfile.TemporaryDirectory(prefix="reverie-apply-") as tmp:
        copy = Path(tmp) / "project"
        await asyncio.to_thread(shutil.copytree, root, copy, symlinks=True,
                                ignore=shutil.ignore_patterns(*ALWAYS_SKIPPED))
        await asyncio.to_thread(write_tree, copy, files)
        return await box.run(copy, test, limits=msgspec.structs.replace(box.limits, timeout=seconds))


def apply_answer(root: Path, answer: object) -> list[str]:
    """Write the answer's files into `root`; the paths written."""
    files = _changed(answer)
    write_tree(root, files)
    return sorted(files)
