"""`reverie demo`, the README's main job: works from any directory, writes nothing there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_solves_every_sample_from_any_directory_and_leaves_it_clean(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "reverie.runtime.cli", "demo"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for name in ("db-migration", "dns-cutover", "release-rollout"):
        assert f"{name}: accepted after" in out
    assert "db-migration: accepted after 2 round(s)" in out  # needs a rejected first round
    assert "flagged harmful, quarantined" in out
    assert "rejections by critic:" in out and "path: " in out
    assert list(tmp_path.iterdir()) == []
    assert "Traceback" not in out + proc.stderr


def test_init_writes_a_starter_swarm_that_loads_and_never_overwrites(tmp_path: Path) -> None:
    from reverie.runtime import load_config

    folder = tmp_path / "starter"
    made = subprocess.run([sys.executable, "-m", "reverie.runtime.cli", "init", str(folder)], capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert f"reverie up {folder / 'swarm.toml'}" in made.stdout
    config = load_config(folder / "swarm.toml")
    assert config.data_path == (folder / "data").resolve()
    assert {a.kind for a in config.agents} >= {"dreamer", "sandbox-critic"}
    assert sorted(p.name for p in (folder / "median").iterdir()) == ["stats.py", "test_stats.py"]
    again = subprocess.run([sys.executable, "-m", "reverie.runtime.cli", "init", str(folder)], capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 1 and "writes only new files" in again.stderr
