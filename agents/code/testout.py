"""What a test run said, as `Failure`s: which test failed, its trimmed message, and the traceback
frames that lie in files the candidate may edit.

Understands pytest's `-rfE --tb=short` output (the short summary's `FAILED`/`ERROR` lines, the
per-test sections with their `path:line: in func` frames and `E   ...` lines, collection errors),
pytest's long and native traceback styles, plain Python tracebacks (chained ones too),
unittest's `FAIL: test (module.Class.test)` headers, and bare `SyntaxError`/`IndentationError`
reports. It never runs anything: it reads the text the sandbox critic captured.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

import msgspec

__all__ = ["MAX_MESSAGE", "Failure", "parse_test_output"]

MAX_MESSAGE = 300
"""A `Failure.message` is cut to this many characters (an ellipsis marks the cut)."""

_LINE_MAX = 160
"""One line of a message is cut to this many, so a long first line leaves room for the next."""


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """One failing (or erroring) test, as the repair engine needs it."""

    test: str
    """The pytest node id (`tests/test_x.py::test_y`), a collection error's file, a unittest
    name, or "" when the output does not say."""
    message: str
    """The trimmed assertion or exception message (at most `MAX_MESSAGE` characters)."""
    frames: tuple[str, ...] = ()
    """`path:line` of traceback frames in editable files, innermost last, relative to the root."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MAJOR = re.compile(r"^={3,} ?(.*?) ?={3,}$")
_SECTION = re.compile(r"^_{3,} (.+?) _{3,}$")
_SUBSECTION = re.compile(r"^-{3,} .+ -{3,}$")
_SUMMARY = re.compile(r"^(FAILED|ERROR) ([^\s(\[]+(?:\[[^\]]*\])?)(?: - (.*))?$")
_PYTEST_FRAME = re.compile(r"^(?!E )([^\s:]+):(\d+):(?: |$)")
_FILE_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)(, in .+)?\s*$')
_CARET = re.compile(r"^\s*[\^~]+\s*$")
_CHAIN = ("The above exception was the direct cause", "During handling of the above exception")
_UNITTEST = re.compile(r"^(FAIL|ERROR): (\S+) \((\S+)\)")
_SYNTAX = re.compile(r"^(SyntaxError|IndentationError|TabError)\b")


class _Paths:
    """Turns a frame's path into an editable path relative to the project root, or None."""

    def __init__(self, editable: Collection[str], root: str) -> None:
        self.editable = {_norm(e) for e in editable}
        self.root = _norm(root).rstrip("/")

    def rel(self, path: str) -> str | None:
        p = _norm(path)
        if self.root and p.startswith(self.root + "/"):
            p = p[len(self.root) + 1:]
        if p in self.editable:
            return p
        ends = sorted((e for e in self.editable if p.endswith("/" + e)), key=len, reverse=True)
        return ends[0] if ends else None

    def strip(self, text: str) -> str:
        return text.replace(self.root + "/", "") if self.root else text


def _norm(path: str) -> str:
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def _frames(found: Iterable[tuple[str, str]], paths: _Paths) -> tuple[str, ...]:
    """Editable frames in order, consecutive repeats (a recursion) collapsed."""
    out: list[str] = []
    for path, line in found:
        rel = paths.rel(path)
        if rel is not None and (not out or out[-1] != f"{rel}:{line}"):
            out.append(f"{rel}:{line}")
    return tuple(out)


def _trim(lines: Iterable[str], paths: _Paths) -> str:
    kept = []
    for raw in lines:
        line = paths.strip(raw.rstrip())
        if not line.strip() or _CARET.match(line):
            continue
        line = line.strip()
        kept.append(line if len(line) <= _LINE_MAX else line[:_LINE_MAX - 3] + "...")
    text = "\n".join(kept)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


def parse_test_output(output: str, editable: Collection[str], root: str = "") -> list[Failure]:
    """Every failure `output` reports, in the order the run reports them.

    `root` is the absolute project root inside the sandbox: frames under it become relative;
    any frame whose path ends with an editable path counts as that file too.
    """
    lines = _ANSI.sub("", output).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    paths = _Paths(editable, root)
    found = _from_pytest(lines, paths)
    return found if found else _from_tracebacks(lines, paths)


# pytest ------------------------------------------------------------------------------------


def _pytest_sections(lines: list[str]) -> list[tuple[str, list[str]]]:
    sections: list[tuple[str, list[str]]] = []
    inside = False
    body: list[str] | None = None
    for line in lines:
        major = _MAJOR.match(line)
        if major:
            inside = major.group(1) in ("FAILURES", "ERRORS")
            body = None
            continue
        if not inside:
            continue
        title = _SECTION.match(line)
        if title:
            body = []
            sections.append((title.group(1), body))
        elif _SUBSECTION.match(line):
            body = None  # captured output: not the test's own traceback
        elif body is not None:
            body.append(line)
    return sections


def _section_key(title: str) -> str:
    for prefix in ("ERROR at setup of ", "ERROR at teardown of "):
        if title.startswith(prefix):
            return title[len(prefix):]
    return title


def _node_key(node: str) -> str:
    if "::" not in node:
        return f"ERROR collecting {node}"
    return ".".join(node.split("::")[1:])


def _body(body: list[str], paths: _Paths) -> tuple[list[str], tuple[str, ...], str]:
    """The E lines, the editable frames, and the first test-file frame's path."""
    e_lines: list[str] = []
    raw_frames: list[tuple[str, str]] = []
    first = ""
    for line in body:
        if line.startswith("E ") or line == "E":
            content = line[1:]
            content = content[min(3, len(content) - len(content.lstrip(" "))):]
            e_lines.append(content)
            m = _FILE_FRAME.match(content)
            if m:
                raw_frames.append((m.group(1), m.group(2)))
            continue
        m = _PYTEST_FRAME.match(line) or _FILE_FRAME.match(line)
        if m:
            raw_frames.append((m.group(1), m.group(2)))
            if not first and m.group(1).endswith(".py"):
                first = _norm(paths.strip(m.group(1)))
    if not e_lines:  # --tb=native: a plain traceback, its exception lines at the end
        native = _from_tracebacks(body, paths)
        e_lines = native[-1].message.split("\n") if native else []
    return e_lines, _frames(raw_frames, paths), first


def _from_pytest(lines: list[str], paths: _Paths) -> list[Failure]:
    sections = _pytest_sections(lines)
    summary = [(m.group(2), m.group(3) or "") for line in lines if (m := _SUMMARY.match(line))]
    used: set[int] = set()
    failures: list[Failure] = []

    def take(node: str) -> tuple[list[str], tuple[str, ...], str] | None:
        key = _node_key(node)
        file = node.split("::")[0]
        candidates = [i for i, (title, _) in enumerate(sections) if i not in used and _section_key(title) == key]
        if not candidates:
            return None
        parsed = {i: _body(sections[i][1], paths) for i in candidates}
        best = next((i for i in candidates if parsed[i][2] == file), candidates[0])
        used.add(best)
        return parsed[best]

    for node, short in summary:
        got = take(node)
        if got is None:
            failures.append(Failure(test=node, message=_trim([short], paths)))
            continue
        e_lines, frames, _ = got
        failures.append(Failure(test=node, message=_trim(e_lines or [short], paths), frames=frames))
    for i, (title, body) in enumerate(sections):
        if i in used:
            continue
        e_lines, frames, first = _body(body, paths)
        key = _section_key(title)
        if key.startswith("ERROR collecting "):
            node = key[len("ERROR collecting "):]
        elif first:
            node = first + "::" + "::".join(key.split("[")[0].split(".")) + key[len(key.split("[")[0]):]
        else:
            node = ""
        failures.append(Failure(test=node, message=_trim(e_lines or [title], paths), frames=frames))
    return failures


# plain Python tracebacks --------------------------------------------------------------------


def _traceback(lines: list[str], i: int) -> tuple[list[tuple[str, str]], list[str], int]:
    """Parse one `Traceback (most recent call last):` block from line i: frames, exception
    lines, and the index after it."""
    frames: list[tuple[str, str]] = []
    i += 1
    while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
        m = _FILE_FRAME.match(lines[i])
        if m:
            frames.append((m.group(1), m.group(2)))
        if not lines[i].strip() and frames:
            break
        i += 1
    exc: list[str] = []
    while i < len(lines) and lines[i].strip() and not lines[i].startswith(("Traceback ", *_CHAIN)):
        exc.append(lines[i])
        i += 1
    return frames, exc, i


def _from_tracebacks(lines: list[str], paths: _Paths) -> list[Failure]:
    failures: list[Failure] = []
    test = ""
    chain: list[tuple[list[tuple[str, str]], list[str]]] = []
    i = 0

    def close() -> None:
        nonlocal chain, test
        if not chain:
            return
        frames = [f for block in reversed(chain) for f in block[0]]  # the cause's frames innermost
        exc = [*chain[-1][1]]
        for _, cause in reversed(chain[:-1]):
            exc += [f"<- {c}" for c in cause[-1:]]
        failures.append(Failure(test=test, message=_trim(exc, paths), frames=_frames(frames, paths)))
        chain, test = [], ""

    while i < len(lines):
        line = lines[i]
        unit = _UNITTEST.match(line)
        if line.startswith("Traceback (most recent call last)"):
            frames, exc, i = _traceback(lines, i)
            chain.append((frames, exc))
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and lines[j].startswith(_CHAIN):
                i = j + 1
                continue
            close()
            continue
        if unit:
            close()
            test = f"{unit.group(3)}"
        elif (m := _FILE_FRAME.match(line)) and not m.group(3):
            end = next((j for j in range(i + 1, min(i + 6, len(lines))) if _SYNTAX.match(lines[j])), None)
            if end is not None:  # a bare SyntaxError report: File, code, caret, the error
                close()
                frames_ = _frames([(m.group(1), m.group(2))], paths)
                message = _trim([lines[end], *lines[i:end]], paths)
                failures.append(Failure(test=test, message=message, frames=frames_))
                test = ""
                i = end + 1
                continue
        i += 1
    close()
    return failures
