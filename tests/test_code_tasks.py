"""Code tasks end to end: a dreamer with the offline repair search and a sandbox critic on a real
nats-server, the task's tests run in a real bubblewrap sandbox."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reverie.protocol import Budget, Decision, Patch, ResultStatus, Task, artifact_of
from reverie.runtime.kinds import Roster

from .conftest import CRITICS, ROOT, agents_running, make_config, run_cli

SAMPLE = json.loads((ROOT / "deploy" / "tasks" / "code" / "median.json").read_text())
BUDGET = Budget(max_rounds=8, max_seconds=120, candidates_per_round=4)

AGENTS = """
[[agents]]
name = "dreamer"
kind = "dreamer"
concurrency = 8
[agents.options]
verdict_timeout = 5.0
[agents.options.reasoner_options]
seed = 7

[[agents]]
name = "sandbox"
kind = "sandbox-critic"
[agents.options.limits]
timeout = 30
""" + CRITICS


@pytest.fixture
def code_config(nats_url: str, tmp_path: Path) -> Any:
    return make_config(nats_url, tmp_path / "data", agents=AGENTS)


async def test_offline_dreamer_serves_plan_and_code_from_one_consumer(code_config: Any) -> None:
    [dream] = [h for h in Roster.of(code_config)["dreamer"].handlers if h.name == "dream"]
    assert set(dream.kinds) == {"plan", "code"}


async def test_failing_project_is_repaired_in_the_sandbox(code_config: Any, nats_url: str) -> None:
    from reverie.runtime import connect

    async with agents_running(code_config, nats_url), connect(code_config, servers=[nats_url]) as swarm:
        result = await swarm.submit(SAMPLE, kind="code", budget=BUDGET, timeout=180)
        assert result.status is ResultStatus.ACCEPTED, result.reason
        assert "--- a/stats.py" in result.answer["patch"] and "+++ b/stats.py" in result.answer["patch"]
        fixed = result.answer["files"]["stats.py"]
        assert set(result.answer["files"]) == {"stats.py"}
        # the accepted patch passes outside the swarm too
        project = Path(code_config.data_dir) / "check"
        project.mkdir(parents=True)
        (project / "stats.py").write_text(fixed)
        (project / "test_stats.py").write_text(SAMPLE["files"]["test_stats.py"])
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                                    cwd=project, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out
        sandbox_verdicts = [v for v in result.accepted.verdicts if v.critic == "sandbox"]
        assert sandbox_verdicts and sandbox_verdicts[0].decision is Decision.ACCEPT
        assert isinstance(artifact_of(result.accepted.candidate), Patch)
        # the rejected candidates say which tests failed
        rejected = [j for r in result.trace for j in r.candidates if j.outcome is Decision.REJECT]
        if rejected:
            reasons = [r for j in rejected for v in j.verdicts for r in v.reasons if v.critic == "sandbox"]
            assert reasons and all(r.code in {"test_failed", "crash", "timeout", "syntax_error"} for r in reasons)
            assert any("test_median" in r.text for r in reasons if r.code == "test_failed")
        # and a plan still dreams on the same dreamer
        plan = json.loads((ROOT / "deploy" / "tasks" / "dns-cutover.json").read_text())
        assert (await swarm.submit(plan, kind="plan", timeout=60)).status is ResultStatus.ACCEPTED


async def test_bad_code_input_fails_naming_the_field(code_config: Any, nats_url: str) -> None:
    from reverie.runtime import connect

    async with agents_running(code_config, nats_url), connect(code_config, servers=[nats_url]) as swarm:
        bad = {**SAMPLE, "files": {"../escape.py": "x = 1"}}
        result = await swarm.submit(bad, kind="code", timeout=30)
        assert result.status is ResultStatus.FAILED
        assert "$.files['../escape.py']" in result.reason and "outside the project" in result.reason
        wrong = await swarm.submit({**SAMPLE, "timeout": "soon"}, kind="code", timeout=30)
        assert wrong.status is ResultStatus.FAILED and "$.timeout" in wrong.reason


def test_cli_submit_code_folder_prints_and_applies_the_patch(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name, content in SAMPLE["files"].items():
        (project / name).write_text(content)
    (project / ".gitignore").write_text("build/\n*.log\n")
    (project / "build").mkdir()
    (project / "build" / "huge.py").write_text("x = 1\n" * 10)
    (project / "debug.log").write_text("noise")
    config = tmp_path / "swarm.toml"
    config.write_text('swarm = "cli"\ndata_dir = "data"\n[nats]\nurl = "embedded"\n' + AGENTS)
    log = tmp_path / "up.log"
    with log.open("w") as out, subprocess.Popen([sys.executable, "-m", "reverie.runtime.cli", "up", str(config)],
                                                stdout=out, stderr=subprocess.STDOUT) as up:
        try:
            _submit_and_apply(log, config, project)
        finally:
            up.terminate()
            up.wait(timeout=30)


def _submit_and_apply(log: Path, config: Path, project: Path) -> None:
    deadline = time.monotonic() + 60
    while "' ready:" not in log.read_text():  # the ready line comes once every agent is subscribed
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    proc = run_cli("submit", str(config), "--code", str(project), "--test", "python -m pytest -q", "--wait",
                   "--apply", "--rounds", "8", "--candidates", "4", timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(": queued (code); one line per round as the dreamer judges it")
    assert any(line.startswith("  round 1/8: 4 candidate(s)") for line in lines), proc.stdout
    assert "patch:" in proc.stdout and "+++ b/stats.py" in proc.stdout
    assert f"applied to {project}: stats.py" in proc.stdout
    assert (project / "debug.log").read_text() == "noise"  # ignored files were neither sent nor touched
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout
    plan = run_cli("submit", str(config), f"@{ROOT / 'deploy' / 'tasks' / 'db-migration.json'}", "--wait", "--quiet",
                   timeout=120)
    assert plan.returncode == 0 and "round 1/" not in plan.stdout and "queued" not in plan.stdout
    assert "accepted after 2 round(s)" in plan.stdout
    refused = run_cli("submit", str(config), "--code", str(project), "--apply", timeout=60)
    assert refused.returncode == 2 and "--apply goes with --code DIR and --wait" in refused.stderr


def test_pack_folder_respects_gitignore_and_refuses_oversized(tmp_path: Path) -> None:
    from reverie.runtime.cli.codepack import CodePackError, pack_folder

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.py").write_text("x = 1\n")
    (tmp_path / "src" / ".gitignore").write_text("generated.py\n")
    (tmp_path / "src" / "generated.py").write_text("y = 2\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\xff" * 10)
    task = pack_folder(tmp_path, test="pytest -q", edit=["src/x.py"])
    assert task["files"] == {"src/.gitignore": "generated.py\n", "src/x.py": "x = 1\n"}
    assert task["editable"] == ["src/x.py"]
    with pytest.raises(CodePackError, match="more than 10 bytes"):
        pack_folder(tmp_path, test="pytest -q", max_bytes=10)
    with pytest.raises(CodePackError, match="no such file"):
        pack_folder(tmp_path, test="pytest -q", edit=["src/nope.py"])


def test_domain_input_types() -> None:
    from reverie.agents.domains import CodeDomain, DomainInputError, TextDomain

    code = CodeDomain()
    assert code.parse(Task(id="t", kind="code", input=SAMPLE)).editable_paths == ["stats.py"]
    with pytest.raises(DomainInputError, match=r"\$\.editable\[0\]"):
        code.parse(Task(id="t", kind="code", input={**SAMPLE, "editable": ["missing.py"]}))
    with pytest.raises(DomainInputError, match="at least one file"):
        code.parse(Task(id="t", kind="code", input={"files": {}}))
    text = TextDomain()
    assert text.parse(Task(id="t", kind="text", input="Why is the sky blue?")).prompt == "Why is the sky blue?"
    with pytest.raises(DomainInputError, match="empty"):
        text.parse(Task(id="t", kind="text", input={"prompt": "  "}))


async def test_a_durable_left_by_a_plan_only_dreamer_is_widened_to_code(code_config: Any, nats_url: str) -> None:
    """A data dir from before domains: the dreamer's durable consumer filters task.plan only.
    JetStream keeps a durable's filter, so the new kinds must be added to it, or they never arrive."""
    from nats.js.api import ConsumerConfig

    from reverie.runtime import connect

    async with connect(code_config, servers=[nats_url]) as client:
        bus = client.bus
        await bus.ensure_streams()
        await bus.js.add_consumer(bus.subjects.tasks_stream, config=ConsumerConfig(
            durable_name="dreamer", name="dreamer", filter_subject=bus.subjects.rel("task.plan")))
        async with agents_running(code_config, nats_url):
            info = await bus.js.consumer_info(bus.subjects.tasks_stream, "dreamer")
            assert sorted(info.config.filter_subjects or []) == sorted(
                [bus.subjects.rel("task.code"), bus.subjects.rel("task.plan")])
            result = await client.submit(SAMPLE, kind="code", budget=BUDGET, timeout=120)
            assert result.status is ResultStatus.ACCEPTED, result.reason
