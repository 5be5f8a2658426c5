"""The Python the sandbox shows: its prefixes are bound read-only at the same paths, so
`python -m pytest` inside finds the same interpreter and site-packages as outside."""

from __future__ import annotations

import asyncio
import os
import sys

import msgspec

from .outcome import SandboxUnavailable

__all__ = ["SYSTEM_DIRS", "Interpreter", "find_interpreter", "host_paths"]

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""The system, bound read-only (or made the symlinks into /usr they are on the host): an
interpreter under these needs no bind of its own."""

_QUERY = "import sys; print(sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, sep='\\n')"


class Interpreter(msgspec.Struct, frozen=True, kw_only=True):
    executable: str
    """Absolute, as given (a venv's `bin/python` symlink stays one): its directory leads PATH."""
    real: str
    """The file it resolves to: runs the launcher."""
    prefixes: tuple[str, ...]
    """Directories to bind read-only, outermost only, none under SYSTEM_DIRS."""

    @property
    def bin_dir(self) -> str:
        return os.path.dirname(self.executable)


def host_paths(paths: list[str]) -> tuple[str, ...]:
    """`paths` and what they resolve to, without those inside another or inside SYSTEM_DIRS."""
    every = sorted({os.path.normpath(p) for p in paths} | {os.path.realpath(p) for p in paths})
    kept: list[str] = []
    for path in every:
        if path == "/" or any(path == d or path.startswith(d + "/") for d in (*SYSTEM_DIRS, *kept)):
            continue
        kept.append(path)
    return tuple(kept)


def _absolute(path: str) -> str:
    return os.path.abspath(path)


def _interpreter(executable: str, prefixes: list[str]) -> Interpreter:
    executable = os.path.abspath(executable)
    real = os.path.realpath(executable)
    return Interpreter(executable=executable, real=real,
                       prefixes=host_paths([*prefixes, os.path.dirname(real), os.path.dirname(executable)]))


async def find_interpreter(python: str | None) -> Interpreter:
    """This process's interpreter for None; else ask `python` where its prefixes are."""
    if python is None:
        return _interpreter(sys.executable,
                            [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix])
    executable = _absolute(python)
    try:
        proc = await asyncio.create_subprocess_exec(
            executable, "-I", "-c", _QUERY, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise SandboxUnavailable(f"cannot run the interpreter {executable}: {exc.strerror}") from exc
    try:
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SandboxUnavailable(f"the interpreter {executable} did not answer within 30 s") from None
    lines = out.decode(errors="replace").splitlines()
    if proc.returncode != 0 or len(lines) != 4 or not all(os.path.isabs(p) for p in lines):
        raise SandboxUnavailable(f"the interpreter {executable} did not say where its prefixes are: "
                                 f"{err.decode(errors='replace').strip() or lines}")
    return _interpreter(executable, lines)
