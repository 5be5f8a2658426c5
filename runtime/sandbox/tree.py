"""Writing a task's files into a folder: the one way a sandbox's workdir (or a project being
patched) gets them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

__all__ = ["write_tree"]


def write_tree(root: Path, files: Mapping[str, str]) -> None:
    """Write each `path -> content` below `root`, making folders as needed. A path that is
    absolute or climbs out of `root` raises ValueError before anything is written."""
    for path in files:
        p = PurePosixPath(path)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise ValueError(f"{path!r} is not a relative path inside the folder")
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
