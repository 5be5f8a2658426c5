"""The command reasoner against real subprocesses: a proposer script in another process."""

from __future__ import annotations

import sys
from pathlib import Path

from reverie.agents.reasoners.command import CommandOptions, CommandReasoner
from reverie.agents.reasoners.factory import make_reasoner, reasoner_kinds
from reverie.protocol import Patch, Reason, Task, Text

PROPOSER = '''
import json, sys
req = json.load(sys.stdin)
kind = req["task"]["kind"]
if kind == "code":
    out = {"proposals": [{"edits": [{"path": "x.py", "search": "1", "replace": "2"}], "rationale": "bump"}]}
elif kind == "text":
    out = [{"text": "an answer to " + req["task"]["input"], "rationale": "round %d, k %d" % (req["round"], req["k"])}]
else:
    out = {"proposals": [{"steps": ["a", "b"], "rationale": "lessons: %d" % len(req["lessons"])}] * 5}
json.dump(out, sys.stdout)
'''


def _reasoner(tmp_path: Path, script: str, timeout: float = 20.0) -> CommandReasoner:
    path = tmp_path / "proposer.py"
    path.write_text(script)
    return CommandReasoner(CommandOptions(command=[sys.executable, str(path)], timeout=timeout))


async def test_proposals_for_every_kind_from_a_real_subprocess(tmp_path: Path) -> None:
    r = _reasoner(tmp_path, PROPOSER)
    [code] = await r.propose(Task(id="t", kind="code", input={}), 1, 3, [])
    assert code.artifact == Patch(edits=(code.artifact.edits[0],)) and code.artifact.edits[0].path == "x.py"
    [text] = await r.propose(Task(id="t", kind="text", input="why"), 2, 3, [])
    assert text.artifact == Text(text="an answer to why") and text.rationale == "round 2, k 3"
    plans = await r.propose(Task(id="t", kind="plan", input={}), 1, 3, [], [Reason(code="risk", text="too risky")])
    assert len(plans) == 3 and plans[0].steps == ("a", "b") and plans[0].rationale == "lessons: 1"


async def test_nonzero_exit_fails_the_round_with_the_stderr_tail(tmp_path: Path) -> None:
    r = _reasoner(tmp_path, "import sys\nsys.stderr.write('model not loaded\\n')\nsys.exit(3)\n")
    [p] = await r.propose(Task(id="t", kind="plan", input={}), 1, 3, [])
    assert p.invalid_code == "command_failed" and "exited with 3" in p.invalid and "model not loaded" in p.invalid


async def test_malformed_output_is_an_unusable_proposal(tmp_path: Path) -> None:
    r = _reasoner(tmp_path, "print('{not json')\n")
    [p] = await r.propose(Task(id="t", kind="plan", input={}), 1, 3, [])
    assert p.invalid_code == "off_schema" and "not a proposals answer" in p.invalid
    r = _reasoner(tmp_path, "print('{\"proposals\": [{\"steps\": 3}]}')\n")
    [p] = await r.propose(Task(id="t", kind="plan", input={}), 1, 3, [])
    assert p.invalid_code == "off_schema"


async def test_a_hanging_command_is_killed_at_its_timeout(tmp_path: Path) -> None:
    r = _reasoner(tmp_path, "import time\ntime.sleep(600)\n", timeout=0.5)
    [p] = await r.propose(Task(id="t", kind="plan", input={}), 1, 3, [])
    assert p.invalid_code == "command_failed" and "within 0.5s" in p.invalid


async def test_missing_program_fails_the_round(tmp_path: Path) -> None:
    r = CommandReasoner(CommandOptions(command=[str(tmp_path / "nope")]))
    [p] = await r.propose(Task(id="t", kind="plan", input={}), 1, 3, [])
    assert p.invalid_code == "command_failed" and "cannot start" in p.invalid


def test_factory_builds_it_and_knows_its_kinds() -> None:
    assert isinstance(make_reasoner("command", {"command": ["true"]}), CommandReasoner)
    assert reasoner_kinds("command", {"command": ["true"], "kinds": ["code"]}) == frozenset({"code"})
    assert reasoner_kinds("command", {"command": ["true"]}) == frozenset({"plan", "code", "text"})
