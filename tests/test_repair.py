"""The offline program-repair engine of code tasks (reverie.agents.code): the test-output parser on
real pytest and Python runs, localisation, every family of the mutation catalogue, the search's
guarantees (never a repeat, `[]` when exhausted, deterministic), and an end-to-end loop that
repairs small buggy programs by proposing, running pytest on each candidate, and feeding the
failures back."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reverie.agents.code.repair import Mutation, RepairSearch, fingerprint, kind_boosts, localise, mutations
from reverie.agents.code.testout import MAX_MESSAGE, Failure, parse_test_output

ADDOPTS = "-rfE --tb=short -p no:cacheprovider"
INI = "[pytest]\npythonpath = src\ntimeout = 3\n"
"""`timeout`: pytest-timeout (a dev dependency) fails a candidate that loops forever, with frames."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_ADDOPTS"] = ADDOPTS
    return env


def write(root: Path, files: Mapping[str, str]) -> None:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def run_pytest(root: Path, files: Mapping[str, str], *, tb: str = "short", timeout: float = 60) -> tuple[int, str]:
    """Run pytest as the sandbox critic does, on `files` written under `root`."""
    write(root, {"pytest.ini": INI, **files})
    env = _env()
    env["PYTEST_ADDOPTS"] = ADDOPTS.replace("--tb=short", f"--tb={tb}")
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:asyncio"],
                              cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:  # what the sandbox reports when the whole run overstays
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        return 124, out + "\nTimeout: the test command timed out\n"
    return proc.returncode, proc.stdout + proc.stderr


def run_python(root: Path, files: Mapping[str, str], *args: str) -> str:
    write(root, files)
    proc = subprocess.run([sys.executable, *args], cwd=root, env=_env(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def line_of(source: str, needle: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if needle in line)


CALC = dedent('''
    def helper(x):
        return x[3]


    def total(xs):
        s = 0
        for i in range(len(xs) - 1):
            s += xs[i]
        return s


    def fact(n):
        return n * fact(n - 1)


    def picks(xs):
        return helper(xs)
''')
CALC_TESTS = dedent('''
    import pytest
    from calc import fact, picks, total

    def test_total():
        assert total([1, 2, 3]) == 6

    def test_fact():
        assert fact(3) == 6

    def test_picks():
        assert picks([1]) == 1

    class TestK:
        @pytest.mark.parametrize("v", [1, 2])
        def test_p(self, v):
            assert v == 1, "v should be one but it is not, and this message goes on and on " * 5

    def test_ok():
        assert True

    @pytest.fixture
    def bad():
        raise ValueError("fixture broke")

    def test_fix(bad):
        pass
''')


# the parser ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tb", ["short", "long", "native"])
def test_parse_real_pytest_failures_errors_and_frames(tmp_path: Path, tb: str) -> None:
    code, out = run_pytest(tmp_path, {"src/calc.py": CALC, "tests/test_calc.py": CALC_TESTS}, tb=tb)
    assert code == 1
    got = {f.test: f for f in parse_test_output(out, ["src/calc.py"], root=str(tmp_path))}
    assert list(got) == ["tests/test_calc.py::test_total", "tests/test_calc.py::test_fact",
                         "tests/test_calc.py::test_picks", "tests/test_calc.py::TestK::test_p[2]",
                         "tests/test_calc.py::test_fix"]
    assert got["tests/test_calc.py::test_total"].frames == ()
    assert "assert 3 == 6" in got["tests/test_calc.py::test_total"].message
    fact = got["tests/test_calc.py::test_fact"]
    assert fact.frames == (f"src/calc.py:{line_of(CALC, 'n * fact')}",)  # the recursion, collapsed
    assert fact.message.startswith("RecursionError: maximum recursion depth exceeded")
    picks = got["tests/test_calc.py::test_picks"]
    assert picks.frames == (f"src/calc.py:{line_of(CALC, 'helper(xs)')}", f"src/calc.py:{line_of(CALC, 'x[3]')}")
    assert picks.message == "IndexError: list index out of range"
    long = got["tests/test_calc.py::TestK::test_p[2]"]
    assert len(long.message) <= MAX_MESSAGE and long.message.startswith("AssertionError: v should be one")
    if tb != "native":
        assert "assert 2 == 1" in long.message  # a long first line leaves room for the next
    assert "fixture broke" in got["tests/test_calc.py::test_fix"].message


@pytest.mark.parametrize(("bad", "error", "line"), [
    ("def f(:\n    pass\n", "SyntaxError", 1),
    ("def f(x):\n    return x\n      y = 2\n", "IndentationError", 3),
])
def test_parse_collection_errors_of_broken_files(tmp_path: Path, bad: str, error: str, line: int) -> None:
    test = "import bad\n\ndef test_x():\n    pass\n"
    code, out = run_pytest(tmp_path, {"src/bad.py": bad, "tests/test_bad.py": test})
    assert code == 2
    [failure] = parse_test_output(out, ["src/bad.py"], root=str(tmp_path))
    assert failure.test == "tests/test_bad.py"
    assert failure.frames == (f"src/bad.py:{line}",)
    assert error in failure.message and str(tmp_path) not in failure.message


def test_parse_plain_chained_traceback_relative_to_the_root_or_by_suffix(tmp_path: Path) -> None:
    run = "import sys\nsys.path.insert(0, 'src')\nfrom calc import picks\n\ntry:\n    picks([1])\n" \
          "except IndexError as e:\n    raise ValueError('wrapped') from e\n"
    out = run_python(tmp_path, {"src/calc.py": CALC, "run.py": run}, "run.py")
    expected = (f"src/calc.py:{line_of(CALC, 'helper(xs)')}", f"src/calc.py:{line_of(CALC, 'x[3]')}")
    for root in (str(tmp_path), ""):  # without the root, an editable path's suffix still matches
        [failure] = parse_test_output(out, ["src/calc.py"], root=root)
        assert failure.test == "" and failure.frames == expected
        assert failure.message == "ValueError: wrapped\n<- IndexError: list index out of range"


def test_parse_unittest_output(tmp_path: Path) -> None:
    tests = "import sys, unittest\nsys.path.insert(0, 'src')\nfrom calc import picks\n\n\n" \
            "class Case(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(picks([1]), 1)\n\n" \
            "    def test_b(self):\n        self.assertEqual(2, 3)\n"
    out = run_python(tmp_path, {"src/calc.py": CALC, "tests/__init__.py": "", "tests/test_u.py": tests},
                     "-m", "unittest", "tests.test_u")
    a, b = parse_test_output(out, ["src/calc.py"], root=str(tmp_path))
    assert (a.test, a.message) == ("tests.test_u.Case.test_a", "IndexError: list index out of range")
    assert a.frames == (f"src/calc.py:{line_of(CALC, 'helper(xs)')}", f"src/calc.py:{line_of(CALC, 'x[3]')}")
    assert (b.test, b.message, b.frames) == ("tests.test_u.Case.test_b", "AssertionError: 2 != 3", ())


def test_parse_bare_syntax_error_report(tmp_path: Path) -> None:
    out = run_python(tmp_path, {"src/bad.py": "def f(x):\n    return x\n      y = 2\n"}, "src/bad.py")
    [failure] = parse_test_output(out, ["src/bad.py"], root=str(tmp_path))
    assert failure.frames == ("src/bad.py:3",) and failure.message.startswith("IndentationError: unexpected indent")


def test_parse_passing_or_unrelated_output_is_empty(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, {"src/ok.py": "X = 1\n", "tests/test_ok.py": "def test_ok():\n    pass\n"})
    assert code == 0 and parse_test_output(out, ["src/ok.py"]) == []
    assert parse_test_output("", ["src/ok.py"]) == []


# localisation -------------------------------------------------------------------------------


def test_localise_ranks_the_innermost_frame_first(tmp_path: Path) -> None:
    files = {"src/calc.py": CALC, "tests/test_calc.py": CALC_TESTS}
    _, out = run_pytest(tmp_path, files)
    failures = [f for f in parse_test_output(out, ["src/calc.py"], root=str(tmp_path)) if "picks" in f.test]
    ranked = localise(files, ["src/calc.py"], failures)
    assert ranked[0] == ("src/calc.py", line_of(CALC, "x[3]"), 1.0)
    assert ranked[1][:2] == ("src/calc.py", line_of(CALC, "helper(xs)"))  # the outer frame next
    assert {line for _, line, _ in ranked} >= {line_of(CALC, "s += xs[i]")}  # everything else still there


def test_localise_follows_the_failing_test_into_the_function_it_calls(tmp_path: Path) -> None:
    files = {"src/calc.py": CALC, "tests/test_calc.py": CALC_TESTS}
    _, out = run_pytest(tmp_path, files)
    failures = [f for f in parse_test_output(out, ["src/calc.py"], root=str(tmp_path)) if "total" in f.test]
    assert failures and failures[0].frames == ()
    ranked = localise(files, ["src/calc.py"], failures)
    inside = range(line_of(CALC, "def total"), line_of(CALC, "return s") + 1)
    assert [line in inside for _, line, _ in ranked[:4]] == [True] * 4
    unittest_style = {**files, "tests/test_u.py": "def test_u():\n    assert total([1]) == 1\n"}
    ranked = localise(unittest_style, ["src/calc.py"], [Failure(test="tests.test_u.test_u", message="AssertionError")])
    assert [line in inside for _, line, _ in ranked[:4]] == [True] * 4


def test_localise_without_failures_ranks_every_editable_file_statically() -> None:
    a = "X = 1\n\n\ndef f(x):\n    y = x\n    return y < 3\n"
    b = "def g(s):\n    return s[1:]\n"
    ranked = localise({"a.py": a, "b.py": b, "tests/t.py": "def test(): pass\n"}, ["a.py", "b.py"], [])
    assert ranked[0][:2] == ("a.py", 6)  # a comparison in a function
    assert {path for path, _, _ in ranked} == {"a.py", "b.py"}
    assert ranked[-1][:2] == ("a.py", 1)  # module level last


def test_localise_weighs_lines_by_how_many_failures_pass_through_them() -> None:
    src = "def f(x):\n    return x + 1\n\n\ndef g(x):\n    return x - 1\n"
    fail = [Failure(test=f"t.py::test_{i}", message="boom", frames=("m.py:6",)) for i in range(3)]
    fail.append(Failure(test="t.py::test_other", message="boom", frames=("m.py:2",)))
    ranked = localise({"m.py": src}, ["m.py"], fail)
    assert [line for _, line, _ in ranked[:2]] == [6, 2]


# the catalogue ------------------------------------------------------------------------------

FAMILIES = [
    ("comparison", "def f(i, n):\n    return i < n  # keep\n", 2, "def f(i, n):\n    return i <= n  # keep\n"),
    ("comparison", "def f(x):\n    return x is None\n", 2, "def f(x):\n    return x is not None\n"),
    ("comparison", "def f(c, s):\n    return c not in s\n", 2, "def f(c, s):\n    return c in s\n"),
    ("arithmetic", "def f(a, b):\n    return a + b\n", 2, "def f(a, b):\n    return a - b\n"),
    ("arithmetic", "def f(a, b):\n    a += b\n    return a\n", 2, "def f(a, b):\n    a -= b\n    return a\n"),
    ("arithmetic", "def f(a, b, c):\n    return a - b * c\n", 2, "def f(a, b, c):\n    return a - (b - c)\n"),
    ("off-by-one", "def f(xs):\n    return xs[0]\n", 2, "def f(xs):\n    return xs[1]\n"),
    ("off-by-one", "def f(n):\n    return list(range(n))\n", 2, "def f(n):\n    return list(range(n + 1))\n"),
    ("off-by-one", "def f(xs, i):\n    return xs[i]\n", 2, "def f(xs, i):\n    return xs[i - 1]\n"),
    ("off-by-one", "def f(xs):\n    return len(xs)\n", 2, "def f(xs):\n    return len(xs) - 1\n"),
    ("off-by-one", "def f(xs):\n    return xs[len(xs) - 1]\n", 2, "def f(xs):\n    return xs[len(xs)]\n"),
    ("off-by-one", "def f(s, i):\n    return s[i:]\n", 2, "def f(s, i):\n    return s[i:-1]\n"),
    ("off-by-one", "def f(s, n):\n    return s[:n]\n", 2, "def f(s, n):\n    return s[:n + 1]\n"),
    ("swap-arguments", "def f(a, b):\n    return pow(a, b)\n", 2, "def f(a, b):\n    return pow(b, a)\n"),
    ("swap-arguments", "def f(a, b, c):\n    return (a - b) / c\n", 2, "def f(a, b, c):\n    return c / (a - b)\n"),
    ("negation", "def f(ok):\n    if ok:\n        return 1\n", 2, "def f(ok):\n    if not ok:\n        return 1\n"),
    ("negation", "def f(d):\n    while not d:\n        d = 1\n", 2, "def f(d):\n    while d:\n        d = 1\n"),
    ("negation", "def f(a, b):\n    return 1 if a else b\n", 2, "def f(a, b):\n    return 1 if not a else b\n"),
    ("negation", "def f(a, b):\n    return a and b\n", 2, "def f(a, b):\n    return a or b\n"),
    ("negation", "def f(a, b):\n    if a or b:\n        pass\n", 2,
     "def f(a, b):\n    if not (a or b):\n        pass\n"),
    ("variable", "def f(xs):\n    best = 0\n    for x in xs:\n        best = max(best, x)\n    return x\n", 5,
     "def f(xs):\n    best = 0\n    for x in xs:\n        best = max(best, x)\n    return best\n"),
    ("constant", "def f():\n    return True\n", 2, "def f():\n    return False\n"),
    ("min-max", "def f(a, b):\n    return min(a, b)\n", 2, "def f(a, b):\n    return max(a, b)\n"),
    ("string-method", "def f(s, p):\n    return s.startswith(p)\n", 2, "def f(s, p):\n    return s.endswith(p)\n"),
    ("string-method", "def f(s):\n    return s.lower()\n", 2, "def f(s):\n    return s.upper()\n"),
    ("string-method", "def f(s):\n    return s.lstrip()\n", 2, "def f(s):\n    return s.rstrip()\n"),
    ("string-method", "def f(s, c):\n    return s.find(c)\n", 2, "def f(s, c):\n    return s.rfind(c)\n"),
    ("base-case", 'def fact(n):\n    """n!"""\n    return n * fact(n - 1)\n', 3,
     'def fact(n):\n    """n!"""\n    if n == 0:\n        return 1\n    return n * fact(n - 1)\n'),
    ("base-case", "def rev(s):\n  return rev(s[1:]) + s[0]\n", 1,
     "def rev(s):\n  if not s:\n    return s\n  return rev(s[1:]) + s[0]\n"),
    ("remove-increment", "def f(n):\n    return n + 1\n", 2, "def f(n):\n    return n\n"),
    ("remove-increment", "def f(n):\n    c = n\n    c += 1\n    return c\n", 3, "def f(n):\n    c = n\n    return c\n"),
    ("remove-increment", "def f(n):\n    for _ in n:\n        n += 1\n", 3,
     "def f(n):\n    for _ in n:\n        pass\n"),
]


@pytest.mark.parametrize(("kind", "source", "line", "expected"), FAMILIES,
                         ids=[f"{k}-{i}" for i, (k, *_) in enumerate(FAMILIES)])
def test_each_family_produces_the_expected_fix(kind: str, source: str, line: int, expected: str) -> None:
    found = [m for m in mutations("m.py", source, line) if m.new_source == expected]
    assert [m.kind for m in found] == [kind], [(m.kind, m.description) for m in mutations("m.py", source, line)]
    assert found[0].path == "m.py" and found[0].line == line and found[0].description.startswith(f"line {line}: ")


SAMPLE = dedent('''
    import os  # unrelated


    def scan(items, limit):   # odd  spacing stays
        """Find it."""
        seen = "héllo wörld" if limit < 2 else "ü"
        total = 0
        for i in range(len(items) - 1):
            if items[i] > limit and not seen.startswith("h"):
                total += items[i] * 2
        return min(total, limit) == True
''')


def test_mutations_are_valid_and_touch_only_their_line() -> None:
    lines = SAMPLE.splitlines(keepends=True)
    count = 0
    for line in range(1, len(lines) + 1):
        for m in mutations("s.py", SAMPLE, line):
            ast.parse(m.new_source)
            new = m.new_source.splitlines(keepends=True)
            assert len(new) == len(lines) and [i + 1 for i, (a, b) in enumerate(zip(lines, new, strict=True))
                                                if a != b] == [line], m.description
            count += 1
    assert count > 40
    crlf = SAMPLE.replace("\n", "\r\n")
    rec = "def fib(n):\r\n    return fib(n - 1) + fib(n - 2)\r\n"
    for source in (crlf, rec):
        for line in range(1, source.count("\n") + 1):
            assert all("\n" not in m.new_source.replace("\r\n", "") for m in mutations("s.py", source, line))
    assert "é" in mutations("s.py", SAMPLE, line_of(SAMPLE, "héllo"))[0].new_source


def test_mutations_are_deterministic_distinct_and_sorted() -> None:
    line = line_of(SAMPLE, "if items[i]")
    first, again = mutations("s.py", SAMPLE, line), mutations("s.py", SAMPLE, line)
    assert first == again and len({m.new_source for m in first}) == len(first) > 5
    assert [m.prior for m in first] == sorted((m.prior for m in first), reverse=True)
    assert mutations("s.py", "def f(:\n", 1) == [] and mutations("s.py", SAMPLE, 999) == []


# the search ---------------------------------------------------------------------------------


def test_fingerprint_is_over_sorted_paths_and_contents() -> None:
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1", "b": "2"}) != fingerprint({"a": "2", "b": "1"})
    assert len(fingerprint({})) == 64


def test_propose_never_repeats_and_returns_nothing_when_exhausted() -> None:
    files = {"m.py": "def f(a, b):\n    if a < b:\n        return a\n    return b\n", "t.py": "X = 1\n"}
    every = {m.new_source for line in range(1, 5) for m in mutations("m.py", files["m.py"], line)}
    tried = {fingerprint(files)}
    search = RepairSearch()
    seen: list[Mutation] = []
    for _ in range(100):
        got = search.propose(files, ["m.py"], [], k=3, tried=tried)
        if not got:
            break
        for m in got:
            fp = fingerprint({**files, m.path: m.new_source})
            assert fp not in tried
            tried.add(fp)
        seen += got
    assert search.propose(files, ["m.py"], [], k=3, tried=tried) == []
    assert len(seen) == len({m.new_source for m in seen}) == len(every)
    assert search.propose(files, ["m.py"], [], k=0, tried=set()) == []
    assert search.propose({"m.py": "def f(:\n"}, ["m.py"], [], k=3, tried=set()) == []


def test_propose_is_deterministic_for_a_seed() -> None:
    files = {"s.py": SAMPLE}
    failures = [Failure(test="t.py::test_a", message="IndexError: list index out of range", frames=("s.py:10",))]
    for seed in (0, 1, 7):
        runs = [RepairSearch(seed=seed).propose(files, ["s.py"], failures, k=4, tried=set()) for _ in range(2)]
        assert runs[0] == runs[1] and len(runs[0]) == 4


def test_a_round_spreads_over_lines_unless_one_is_far_more_suspicious() -> None:
    files = {"s.py": SAMPLE}
    spread = RepairSearch().propose(files, ["s.py"], [], k=4, tried=set())
    assert len({m.line for m in spread}) >= 3
    line = line_of(SAMPLE, "total += items[i]")
    frames = [Failure(test=f"t.py::test_{i}", message="boom", frames=(f"s.py:{line}",)) for i in range(5)]
    focused = RepairSearch().propose(files, ["s.py"], frames, k=4, tried=set())
    assert focused[0].line == line and sum(m.line == line for m in focused) >= 2


def test_failures_and_lessons_steer_the_kinds() -> None:
    assert kind_boosts([Failure(test="", message="RecursionError: maximum recursion depth exceeded")])["base-case"] > 1
    assert kind_boosts([Failure(test="", message="IndexError: list index out of range")])["off-by-one"] > 1
    boosts = kind_boosts([], ["string-method fixed a similar bug", "nothing to see"])
    assert boosts["string-method"] > 1 and boosts["comparison"] == 1.0
    source = "def f(s, p, n):\n    return s.startswith(p) and n < 3\n"
    plain = RepairSearch().propose({"m.py": source}, ["m.py"], [], k=6, tried=set())
    steered = RepairSearch().propose({"m.py": source}, ["m.py"], [], k=6, tried=set(),
                                     lessons=["string-method: `startswith` -> `endswith` fixed a similar task"])
    rank = [[m.kind for m in got].index("string-method") for got in (plain, steered)]
    assert rank[1] < rank[0]
    assert RepairSearch().propose({"m.py": "X = 1\n"}, ["m.py"], [], k=2, tried=set(), lessons=["base case"])


# end to end ---------------------------------------------------------------------------------

PROGRAMS: dict[str, dict[str, str]] = {
    "loop-range": {"src/stats.py": """
        def total(xs):
            s = 0
            for i in range(len(xs) - 1):
                s += xs[i]
            return s


        def mean(xs):
            return total(xs) / len(xs)
        """, "tests/test_stats.py": """
        from stats import mean, total

        def test_total():
            assert total([1, 2, 3]) == 6

        def test_mean():
            assert mean([2, 4]) == 3
        """},
    "recursion-base-case": {"src/mathx.py": '''
        def fact(n):
            """n!"""
            return n * fact(n - 1)


        def double(x):
            return x * 2
        ''', "tests/test_mathx.py": """
        from mathx import double, fact

        def test_fact():
            assert fact(5) == 120

        def test_fact_small():
            assert fact(0) == 1 and fact(1) == 1

        def test_double():
            assert double(3) == 6
        """},
    "string-prefix": {"src/text.py": """
        def strip_prefix(s, prefix):
            if s.endswith(prefix):
                return s[len(prefix):]
            return s


        def shout(s):
            return s.upper() + "!"
        """, "tests/test_text.py": """
        from text import shout, strip_prefix

        def test_strip():
            assert strip_prefix("foobar", "foo") == "bar"

        def test_keep():
            assert strip_prefix("barfoo", "foo") == "barfoo"

        def test_shout():
            assert shout("hi") == "HI!"
        """},
    "loop-binary-search": {"src/search.py": """
        def find(xs, target):
            lo, hi = 0, len(xs) - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if xs[mid] == target:
                    return mid
                if xs[mid] < target:
                    lo = mid + 1
                else:
                    hi = mid - 1
            return -1
        """, "tests/test_search.py": """
        from search import find

        def test_found():
            xs = [1, 3, 5, 7, 9]
            assert [find(xs, x) for x in xs] == [0, 1, 2, 3, 4]

        def test_missing():
            assert find([1, 3, 5], 4) == -1
        """},
    "loop-wrong-variable": {"src/largest.py": """
        def largest(xs):
            best = xs[0]
            for x in xs:
                if x > best:
                    best = x
            return x
        """, "tests/test_largest.py": """
        from largest import largest

        def test_largest():
            assert largest([3, 9, 2]) == 9
        """},
    "string-palindrome": {"src/pal.py": """
        def is_palindrome(s):
            s = s.lower()
            for i in range(len(s) // 2):
                if s[i] != s[len(s) - i]:
                    return False
            return True
        """, "tests/test_pal.py": """
        from pal import is_palindrome

        def test_yes():
            assert is_palindrome("Racecar")

        def test_no():
            assert not is_palindrome("abca")
        """},
    "string-title-case": {"src/title.py": """
        def title_case(sentence):
            words = []
            for w in sentence.split():
                words.append(w[0].lower() + w[1:].lower())
            return " ".join(words)
        """, "tests/test_title.py": """
        from title import title_case

        def test_title():
            assert title_case("hello big WORLD") == "Hello Big World"
        """},
    "distractors": {"src/inventory.py": """
        DEFAULT_STOCK = 10


        def new_inventory(names):
            return {name: DEFAULT_STOCK for name in names}


        def sell(inv, name, qty):
            if inv[name] < qty:
                raise ValueError("not enough stock")
            inv[name] -= qty
            return inv[name]


        def restock(inv, qty):
            for name in inv:
                inv[name] -= qty
            return inv


        def low(inv, threshold=3):
            return sorted(name for name, n in inv.items() if n <= threshold)
        """, "tests/test_inventory.py": """
        from inventory import low, new_inventory, restock, sell

        def test_sell():
            assert sell(new_inventory(["a", "b"]), "a", 4) == 6

        def test_restock():
            assert restock(new_inventory(["a"]), 5) == {"a": 15}

        def test_low():
            assert low({"a": 1, "b": 9, "c": 3}) == ["a", "c"]
        """},
    "two-files-arithmetic": {"src/geometry.py": """
        def area(w, h):
            return w + h


        def perimeter(w, h):
            return 2 * (w + h)
        """, "src/report.py": """
        from geometry import area, perimeter


        def describe(shapes):
            return [f"{n}: area {area(w, h)}, perimeter {perimeter(w, h)}" for n, w, h in shapes]
        """, "tests/test_report.py": """
        from report import describe

        def test_describe():
            assert describe([("sq", 2, 2), ("r", 3, 1)]) == ["sq: area 4, perimeter 8", "r: area 3, perimeter 8"]
        """},
}
MAX_ROUNDS = 6


def repair_loop(tmp: Path, files: dict[str, str], editable: list[str]) -> tuple[Mutation | None, int]:
    """The dreamer's loop in miniature: propose 4, run pytest on each (in parallel), feed the
    failures of every rejected candidate back. Returns the fix and the round it came in."""
    search = RepairSearch(seed=0)
    failures: list[Failure] = []
    tried = {fingerprint(files)}
    for rnd in range(1, MAX_ROUNDS + 1):
        proposals = search.propose(files, editable, failures, k=4, tried=tried)
        assert proposals, f"exhausted in round {rnd}"
        for m in proposals:
            fp = fingerprint({**files, m.path: m.new_source})
            assert fp not in tried
            tried.add(fp)
        roots = [tmp / f"r{rnd}c{i}" for i in range(len(proposals))]
        with ThreadPoolExecutor(len(proposals)) as pool:
            runs = list(pool.map(lambda rm: run_pytest(rm[0], {**files, rm[1].path: rm[1].new_source}, timeout=30),
                                 zip(roots, proposals, strict=True)))
        for root, m, (code, out) in zip(roots, proposals, runs, strict=True):
            if code == 0:
                return m, rnd
            failures += parse_test_output(out, editable, root=str(root))
    return None, MAX_ROUNDS


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_end_to_end_repairs_each_program_within_six_rounds(tmp_path: Path, name: str) -> None:
    files = {path: dedent(text) for path, text in PROGRAMS[name].items()}
    editable = [path for path in files if path.startswith("src/")]
    code, _ = run_pytest(tmp_path / "original", files)
    assert code == 1  # the program really is buggy
    fix, rnd = repair_loop(tmp_path, files, editable)
    assert fix is not None, f"{name} not repaired in {MAX_ROUNDS} rounds"
    print(f"{name}: repaired in round {rnd} by {fix.kind} ({fix.description})")
