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
