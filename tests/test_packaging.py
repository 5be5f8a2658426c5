"""The wheel ships what the tree has: every module of every `reverie.*` package, the deploy
files and the `py.typed` markers. (A hand-kept package list once left `reverie.agents.claude`
out of every wheel while the editable install hid it.) `.ci/run` goes further: it installs
this wheel into a fresh venv and runs `reverie demo` and an import of every module outside
the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOTS = {"protocol": "reverie/protocol", "runtime": "reverie/runtime", "agents": "reverie/agents",
         "deploy": "reverie/deploy"}
TYPED = ("protocol", "runtime", "agents")


def tracked(folder: str) -> list[Path]:
    """The tree's files under `folder` that git knows (untracked scratch files do not count)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", folder],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def expected_files() -> set[str]:
    """Wheel paths of every Python module under the mapped roots and every deploy data file."""
    want: set[str] = set()
    for folder, target in ROOTS.items():
        for path in tracked(folder):
            rel = path.relative_to(ROOT / folder).as_posix()
            if path.suffix == ".py" or (folder == "deploy" and path.suffix in (".toml", ".json", ".conf")):
                want.add(f"{target}/{rel}")
    return want


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    (found,) = out.glob("reverie-*.whl")
    return found


def test_wheel_holds_every_module_and_deploy_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    want = expected_files()
    assert "reverie/agents/claude/client.py" in want and "reverie/deploy/local.toml" in want  # the check sees the tree
    missing = sorted(want - names)
    assert not missing, f"the wheel lacks {len(missing)} file(s) of the tree: {missing[:20]}"


def test_wheel_marks_packages_typed(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"{ROOTS[t]}/py.typed" for t in TYPED} <= names


def test_wheel_ships_no_tests_or_benchmarks(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert all(n.startswith(("reverie/", "reverie-")) for n in names), [n for n in names if not n.startswith("reverie")]
    assert not [n for n in names if "__pycache__" in n]


def test_wheel_declares_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        entry = next(n for n in zf.namelist() if n.endswith("entry_points.txt"))
        assert "reverie = reverie.runtime.cli:main" in zf.read(entry).decode()
