"""Check every case of the program-repair corpus: the seeded bug fails the tests, the fix passes.

    python bench/repair_corpus/check_corpus.py [case ...] [--max-seconds 2.0]

For each case folder (one holding a case.json), in a temporary copy:

1. the metadata is well formed (a known family; one buggy line and one fixed line, except
   `missing_base_case`, whose fix inserts lines, and `outside_catalogue`, whose fix may span
   lines), the program modules are 15-60 lines, and the tests number 3-8;
2. `python -m pytest -q -p no:cacheprovider` on the program as shipped must exit 1 (tests fail);
3. the fix from case.json is applied (the lines at `line` whose stripped text is `buggy` are
   replaced by `fixed`, indented like the line they replace; an empty `buggy` inserts `fixed`
   before `line` with that line's indentation), and the same command must exit 0;
4. each run takes at most --max-seconds of wall time, interpreter start-up included (a run
   over the limit is repeated once, so a momentarily busy machine does not fail a case);
5. no run touches the network or writes outside the copied case folder: a `sitecustomize`
   put on PYTHONPATH installs an audit hook that blocks and reports sockets and writes
   elsewhere (TMPDIR points into the copy, so pytest's own capture files stay inside it).

One line per case, then a summary; the exit status is non-zero if any case is wrong.
Standard library only; run it with a Python that has pytest installed (the project venv).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAMILIES = (
    "comparison",
    "arithmetic",
    "off_by_one",
    "swapped_arguments",
    "negated_condition",
    "wrong_variable",
    "boolean_constant",
    "min_max",
    "string_method",
    "missing_base_case",
    "outside_catalogue",
)
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
RUN_TIMEOUT = 60.0
GUARD_TAG = "corpus-guard:"

# Imported by every Python process of a test run (via PYTHONPATH). It blocks sockets, and file
# writes (open for writing, mkdir, remove, rename, ...) outside CORPUS_GUARD_ROOT, and reports
# each blocked attempt on stderr at exit, so a swallowed PermissionError is still seen.
GUARD = r'''
import atexit
import os
import sys

_ROOT = os.path.realpath(os.environ["CORPUS_GUARD_ROOT"])
_TAG = "__GUARD_TAG__"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {
    "os.mkdir": (0,), "os.rmdir": (0,), "os.remove": (0,), "os.rename": (0, 1),
    "os.replace": (0, 1), "os.truncate": (0,), "os.symlink": (1,), "os.link": (1,),
    "os.chmod": (0,), "os.utime": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,),
}
_NET_EVENTS = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
               "socket.sendto", "socket.sendmsg", "urllib.Request"}
_blocked = []


def _inside(path):
    if isinstance(path, int):
        return True  # a file descriptor: already opened, and checked then
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return real == _ROOT or real.startswith(_ROOT + os.sep) or real == os.devnull


def _block(what):
    _blocked.append(what)
    raise PermissionError(f"{_TAG} {what}")


def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writing and path is not None and not _inside(path):
            _block(f"write to {os.fsdecode(path)}")
    elif event in _PATH_EVENTS:
        for i in _PATH_EVENTS[event]:
            if i < len(args) and args[i] is not None and not _inside(args[i]):
                _block(f"{event} {args[i]!r}")
    elif event in _NET_EVENTS:
        shown = args[1:] if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg") else args
        _block(f"network: {event} {shown}")


@atexit.register
def _report():
    for what in _blocked:
        sys.__stderr__.write(f"{_TAG} blocked {what}\n")


sys.addaudithook(_hook)
'''.replace("__GUARD_TAG__", GUARD_TAG)


class CaseError(Exception):
    pass


def load_case(folder: Path) -> dict:
    try:
        meta = json.loads((folder / "case.json").read_text())
    except (OSError, ValueError) as e:
        raise CaseError(f"case.json: {e}") from None
    if meta.get("bug") not in FAMILIES:
        raise CaseError(f"unknown family {meta.get('bug')!r}")
    if not isinstance(meta.get("description"), str) or not meta["description"].strip():
        raise CaseError("no description")
    fix = meta.get("fix")
    if not isinstance(fix, dict) or not {"path", "line", "buggy", "fixed"} <= fix.keys():
        raise CaseError("fix must have path, line, buggy, fixed")
    if not isinstance(fix["line"], int) or fix["line"] < 1:
        raise CaseError("fix.line must be a positive integer")
    if not (folder / fix["path"]).is_file():
        raise CaseError(f"fix.path {fix['path']} does not exist")
    buggy, fixed = fix["buggy"], fix["fixed"]
    family = meta["bug"]
    if family == "missing_base_case":
        if buggy != "" or not fixed.strip():
            raise CaseError("missing_base_case: buggy must be empty and fixed the inserted lines")
    elif family != "outside_catalogue":
        if "\n" in buggy or "\n" in fixed or not buggy.strip() or not fixed.strip():
            raise CaseError(f"{family}: buggy and fixed must be single lines")
        if buggy.strip() == fixed.strip():
            raise CaseError("buggy and fixed are the same line")
    return meta


def check_shape(folder: Path) -> list[str]:
    """Module sizes and test counts; returns problems."""
    problems = []
    tests = 0
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder)
        if "__pycache__" in rel.parts:
            continue
        source = path.read_text()
        if path.name.startswith("test_"):
            tree = ast.parse(source)
            tests += sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body)
        elif path.name not in ("conftest.py", "__init__.py"):
            lines = len(source.splitlines())
            if not 15 <= lines <= 60:
                problems.append(f"{rel} has {lines} lines (want 15-60)")
    if not 3 <= tests <= 8:
        problems.append(f"{tests} test functions (want 3-8)")
    return problems


def apply_fix(folder: Path, fix: dict) -> None:
    path = folder / fix["path"]
    lines = path.read_text().splitlines(keepends=True)
    at = fix["line"] - 1
    if at >= len(lines):
        raise CaseError(f"fix.line {fix['line']} is past the end of {fix['path']}")
    anchor = lines[at]
    indent = anchor[: len(anchor) - len(anchor.lstrip())]
    buggy = fix["buggy"].split("\n") if fix["buggy"] else []
    for k, expected in enumerate(buggy):
        got = lines[at + k].strip() if at + k < len(lines) else None
        if got != expected:
            raise CaseError(f"{fix['path']}:{fix['line'] + k} is {got!r}, case.json says {expected!r}")
    replacement = [(indent + text if text.strip() else "") + "\n" for text in fix["fixed"].split("\n")]
    lines[at:at + len(buggy)] = replacement
    path.write_text("".join(lines))


def run_pytest(folder: Path, guard_dir: Path) -> tuple[int, float, str, str]:
    """Exit code, seconds, stdout, stderr of one test run in `folder`."""
    tmp = folder / ".tmp"
    tmp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(guard_dir),
        PYTHONDONTWRITEBYTECODE="1",
        CORPUS_GUARD_ROOT=str(folder),
        TMPDIR=str(tmp),
        NO_COLOR="1",
    )
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, *PYTEST], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - start, "", f"timed out after {RUN_TIMEOUT:.0f} s"
    return proc.returncode, time.perf_counter() - start, proc.stdout, proc.stderr


def summary_line(stdout: str, stderr: str) -> str:
    """pytest's closing line, e.g. `1 failed, 4 passed in 0.05s`."""
    lines = [line.strip("= ") for line in stdout.splitlines() if line.strip()]
    return lines[-1] if lines else (stderr.strip().splitlines() or ["(no output)"])[-1]


def check_case(folder: Path, guard_dir: Path, max_seconds: float) -> tuple[str, list[str], list[str]]:
    """Returns (family, problems, notes); the case is right when problems is empty."""
    meta = load_case(folder)
    problems = check_shape(folder)
    notes = []
    with tempfile.TemporaryDirectory(prefix=f"corpus-{folder.name}-") as scratch:
        work = Path(scratch) / folder.name
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".tmp"))
        for label, want in (("buggy", 1), ("fixed", 0)):
            if label == "fixed":
                apply_fix(work, meta["fix"])
            code, seconds, stdout, stderr = run_pytest(work, guard_dir)
            if seconds > max_seconds and code == want:  # once more, to tell a busy machine from slow tests
                code, seconds, stdout, stderr = run_pytest(work, guard_dir)
            output = stdout + stderr
            notes.append(f"{label}: exit {code}, {seconds:.2f} s, {summary_line(stdout, stderr)}")
            if code != want:
                problems.append(f"{label} program: pytest exited {code}, want {want}\n{output}")
            if seconds > max_seconds:
                problems.append(f"{label} run took {seconds:.2f} s (limit {max_seconds:.1f} s)")
            if GUARD_TAG in output:
                blocked = [line for line in output.splitlines() if GUARD_TAG in line]
                problems.append(f"{label} run touched the outside world: " + "; ".join(blocked[:5]))
    return meta["bug"], problems, notes


def guard_works(guard_dir: Path) -> bool:
    """The guard must block a write outside the folder and a DNS lookup, or the check means nothing."""
    with tempfile.TemporaryDirectory(prefix="corpus-guard-") as scratch:
        root = Path(scratch) / "case"
        root.mkdir()
        outside = Path(scratch) / "outside.txt"
        probe = (
            "import socket, sys\n"
            "ok = 0\n"
            f"try:\n    open({str(outside)!r}, 'w')\nexcept PermissionError:\n    ok += 1\n"
            "try:\n    socket.getaddrinfo('localhost', 80)\nexcept PermissionError:\n    ok += 1\n"
            "open('inside.txt', 'w').close()\n"
            "sys.exit(0 if ok == 2 else 1)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(guard_dir), "CORPUS_GUARD_ROOT": str(root)}
        proc = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, timeout=30)
        return proc.returncode == 0 and not outside.exists() and (root / "inside.txt").exists()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--max-seconds", type=float, default=2.0, help="time limit per pytest run")
    args = parser.parse_args()

    folders = sorted(p.parent for p in HERE.glob("*/case.json"))
    if args.cases:
        folders = [f for f in folders if f.name in set(args.cases)]
        missing = set(args.cases) - {f.name for f in folders}
        if missing:
            print(f"no such case: {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
    try:
        import pytest  # noqa: F401  (only to fail early with a clear message)
    except ImportError:
        print(f"pytest is not installed for {sys.executable}; activate the project venv", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="corpus-guard-dir-") as guard_dir:
        (Path(guard_dir) / "sitecustomize.py").write_text(GUARD)
        if not guard_works(Path(guard_dir)):
            print("the sandbox guard does not block writes and network access; refusing to check", file=sys.stderr)
            return 2
        families: Counter[str] = Counter()
        failed = []
        width = max((len(f.name) for f in folders), default=10)
        for folder in folders:
            try:
                family, problems, notes = check_case(folder, Path(guard_dir), args.max_seconds)
            except CaseError as e:
                family, problems, notes = "?", [str(e)], []
            families[family] += 1
            status = "FAIL" if problems else "ok"
            print(f"{status:<4}  {folder.name:<{width}}  {family:<18}  " + "; ".join(notes))
            if problems:
                failed.append(folder.name)
                for problem in problems:
                    print("      " + problem.replace("\n", "\n      "))

    print()
    print(f"{len(folders)} cases, {len(folders) - len(failed)} ok, {len(failed)} wrong")
    print("families: " + ", ".join(f"{name} {families[name]}" for name in FAMILIES if families[name]))
    if failed:
        print("wrong: " + ", ".join(failed))
    return 1 if failed or not folders else 0


if __name__ == "__main__":
    sys.exit(main())
