"""Claude for code and text tasks: patches through `propose_patch` (search/replace edits against
named files), answers through `propose_answer`, earlier rounds' test output in the prompt, the
same cache layout as plans. The real `AsyncAnthropic` client against the fake Messages API on
loopback; end to end, a dreamer and a sandbox critic on a real NATS server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reverie.agents.claude.client import Claude, ClaudeOptions
from reverie.agents.claude.critic import build_request as critic_request
from reverie.agents.claude.kinds import PATCH_TOOL
from reverie.agents.claude.reasoner import ClaudeReasoner
from reverie.agents.claude.reasoner import build_request as reasoner_request
from reverie.agents.claude.setup import KINDS
from reverie.agents.dreamer.dreamer import served_kinds
from reverie.agents.dreamer.options import DreamerOptions
from reverie.agents.reasoners import Proposal
from reverie.protocol import (
    Candidate,
    Decision,
    Edit,
    JudgedCandidate,
    Patch,
    Reason,
    ResultStatus,
    RoundTrace,
    Task,
    Text,
    Verdict,
    artifact_of,
)
from reverie.runtime import connect

from .conftest import ROOT, agents_running, make_config
from .fakes.claude_fixtures import KEY, agents
from .fakes.messages_api import FakeAnthropic, Reply

KEY_ENV = "REVERIE_TEST_ANTHROPIC_KEY"
CALC = "def add(a, b):\n    return a - b\n\n\ndef double(x):\n    return add(x, x)\n"
TEST_CALC = ("from calc import add, double\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n"
             "def test_double():\n    assert double(2) == 4\n")
CODE_TASK = Task(id="code1", kind="code", input={
    "files": {"test_calc.py": TEST_CALC, "calc.py": CALC}, "test": "python -m pytest -q",
    "instruction": "make the failing tests pass", "timeout": 20})
FIX = {"edits": [{"path": "calc.py", "search": "return a - b", "replace": "return a + b"}],
       "rationale": "add must add"}
FAILURE = ("test_calc.py::test_add: AssertionError: assert -1 == 3\n +  where -1 = add(1, 2)")
TEXT_TASK = Task(id="text1", kind="text", input={"prompt": "Name the capital of France in one sentence.",
                                                 "context": "The asker is a child."})


def _options(fake: FakeAnthropic, **kw: Any) -> ClaudeOptions:
    return ClaudeOptions(base_url=fake.url, api_key_env=KEY_ENV, max_retries=0, **kw)


def _judged(task: Task, rnd: int, proposals: list[Proposal], verdicts: list[Verdict]) -> RoundTrace:
    """A round as the dreamer records it: usable proposals judged by `verdicts` (in order),
    unusable ones rejected by the dreamer's reasoner with their reason."""
    out, left = [], iter(verdicts)
    for i, p in enumerate(proposals):
        cand = Candidate(id=f"r{rnd}c{i}", task=task, round=rnd, index=i, steps=p.steps, text=p.text,
                         rationale=p.rationale, artifact=p.artifact)
        verdict = (Verdict(candidate_id=cand.id, critic="dreamer.reasoner", decision=Decision.REJECT,
                           reasons=(Reason(code=p.invalid_code, text=p.invalid),)) if p.invalid else next(left))
        out.append(JudgedCandidate(candidate=cand, verdicts=(verdict,), outcome=verdict.decision))
    return RoundTrace(round=rnd, candidates=tuple(out), elapsed=1.0)


def _breakpoints(body: dict[str, Any]) -> list[str]:
    """Where the request's cache breakpoints are: `system`, `content[i]`."""
    marks = [f"system[{i}]" for i, b in enumerate(body["system"]) if "cache_control" in b]
    marks += [f"tools[{i}]" for i, b in enumerate(body["tools"]) if "cache_control" in b]
    return marks + [f"content[{i}]" for i, b in enumerate(body["messages"][0]["content"]) if "cache_control" in b]


def test_claude_dreams_about_plans_code_and_text_and_an_anthropic_dreamer_serves_all_three(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    assert ClaudeReasoner.kinds == frozenset({"plan", "code", "text"}) == KINDS
    options = DreamerOptions(reasoner="anthropic", reasoner_options={
        "base_url": "http://127.0.0.1:9", "api_key_env": KEY_ENV, "effort": "high", "refine_effort": "low"})
    assert served_kinds(options) == ["code", "plan", "text"]


async def test_a_code_round_proposes_patches_and_the_next_round_reads_the_test_failures(fake: FakeAnthropic) -> None:
    absent = {"edits": [{"path": "calc.py", "search": "return a * b", "replace": "return a + b"}],
              "rationale": "multiply?"}
    protected = {"edits": [{"path": "test_calc.py", "search": "== 3", "replace": "== -1"}], "rationale": "cheat"}
    whole = {"edits": [{"path": "calc.py", "replace": CALC.replace("a - b", "b + a")}], "rationale": "rewrite"}
    fake.script(Reply.tools("propose_patch", [FIX, absent, protected, whole, {"edits": [], "rationale": "x"}]),
                Reply.tools("propose_patch", [whole]))
    reasoner = ClaudeReasoner(_options(fake, effort="high", refine_effort="low"))
    try:
        first = await reasoner.propose(CODE_TASK, 1, 3, [])
        fix, miss, cheat, rewrite, empty = first.proposals
        assert fix.artifact == Patch(edits=(Edit(path="calc.py", search="return a - b", replace="return a + b"),))
        assert fix.text.startswith("--- a/calc.py\n+++ b/calc.py\n")
        assert "-    return a - b\n+    return a + b\n" in fix.text
        assert fix.rationale == "add must add" and not fix.invalid
        assert miss.invalid_code == "off_schema" and "edit 1 of calc.py" in miss.invalid
        assert "occurs 0 times" in miss.invalid and '"return a * b"' in miss.invalid and miss.artifact is None
        assert cheat.invalid_code == "off_schema" and "may not edit: test_calc.py" in cheat.invalid
        assert rewrite.artifact == Patch(edits=(Edit(path="calc.py", replace=CALC.replace("a - b", "b + a")),))
        assert "+    return b + a" in rewrite.text and not rewrite.invalid
        assert empty.invalid_code == "off_schema" and "propose_patch schema" in empty.invalid

        sandbox = [Verdict(candidate_id="r1c0", critic="sandbox", decision=Decision.REJECT, reasons=(
                       Reason(code="test_failed", text=FAILURE, ops=("test_calc.py::test_add",),
                              where=("calc.py:2", "calc.py:6")),)),
                   Verdict(candidate_id="r1c3", critic="sandbox", decision=Decision.REJECT, reasons=(
                       Reason(code="timeout", text="the tests did not finish within 20s", limit=20),))]
        history = [_judged(CODE_TASK, 1, first.proposals, sandbox)]
        second = await reasoner.propose(CODE_TASK, 2, 2, history)
        assert [p.text for p in second.proposals] == [rewrite.text]
    finally:
        await reasoner.close()

    r1, r2 = (r.body for r in fake.message_requests())
    assert [t["name"] for t in r1["tools"]] == ["propose_patch"] and r1["tools"] == r2["tools"] == [PATCH_TOOL]
    assert "tool_choice" not in r1 and "tool_choice" not in r2  # claude-sonnet-5-5 takes no forced tool choice
    assert "`propose_patch`" in r1["system"][0]["text"] and "sandbox" in r1["system"][0]["text"]
    task_block = r1["messages"][0]["content"][0]["text"]
    assert task_block.startswith("Task code1 (kind code):\nInstruction: make the failing tests pass\n")
    assert "Test command: python -m pytest -q" in task_block and "Editable files: calc.py\n" in task_block
    assert "Read-only files: test_calc.py\n" in task_block
    assert f'<file path="calc.py" editable="yes">\n{CALC}</file>' in task_block
    assert task_block.index('path="calc.py"') < task_block.index('path="test_calc.py"')  # sorted by path
    # the cache layout of plans: system; task + lessons; the newest round; each round extends the last
    assert _breakpoints(r1) == ["system[0]", "content[1]"]
    assert _breakpoints(r2) == ["system[0]", "content[1]", "content[2]"]
    c1, c2 = r1["messages"][0]["content"], r2["messages"][0]["content"]
    assert r1["system"] == r2["system"] and c2[:len(c1) - 1] == c1[:-1] and len(c2) == len(c1) + 1
    assert c1[-1]["text"] == "Round 1: propose 3 new candidate(s) with propose_patch."
    assert fake.usage_log[1]["cache_read_input_tokens"] == fake.usage_log[0]["cache_creation_input_tokens"] > 0
    assert r1["output_config"] == {"effort": "high"} and r2["output_config"] == {"effort": "low"}
    # round 1 as round 2 reads it: rationale, diff, then the test output and every other reason
    block = c2[2]["text"]
    assert block.startswith("Round 1: your candidates and the critics' verdicts.\n#1 reject: add must add\n<diff>\n")
    assert f"{fix.text}</diff>\n  sandbox: reject\n    [test_failed] {FAILURE} (through calc.py:2, calc.py:6)" in block
    assert ("#2 reject: (unusable model output)\n  dreamer.reasoner: reject\n"
            "    [off_schema] the patch does not apply: edit 1 of calc.py") in block
    assert "may not edit: test_calc.py" in block and "[timeout] the tests did not finish within 20s" in block


async def test_a_text_task_is_answered_through_propose_answer(fake: FakeAnthropic) -> None:
    answer = {"text": "Paris is the capital of France.", "rationale": "one sentence, plain words"}
    fake.script(Reply.tools("propose_answer", [answer, {"text": "  ", "rationale": "blank"}, {"text": "x"}]),
                Reply.tools("propose_answer", [answer]))
    reasoner = ClaudeReasoner(_options(fake))
    try:
        first = await reasoner.propose(TEXT_TASK, 1, 2, [])
        good, blank, off = first.proposals
        assert good == Proposal(artifact=Text(text=answer["text"]), text=answer["text"], rationale=answer["rationale"],
                                answer={"text": answer["text"]})
        assert blank.invalid == "the answer is blank" and "propose_answer schema" in off.invalid
        judge = Verdict(candidate_id="r1c0", critic="judge", decision=Decision.REJECT,
                        reasons=(Reason(code="constitution", text="rule 1: explain why, for a child"),))
        await reasoner.propose(TEXT_TASK, 2, 2, [_judged(TEXT_TASK, 1, first.proposals, [judge])])
        assert reasoner.features(TEXT_TASK) == frozenset({"kind:text"})
    finally:
        await reasoner.close()
    r1, r2 = (r.body for r in fake.message_requests())
    assert [t["name"] for t in r1["tools"]] == ["propose_answer"] and "`propose_answer`" in r1["system"][0]["text"]
    assert r1["messages"][0]["content"][0]["text"] == (
        "Task text1 (kind text):\n<prompt>\nName the capital of France in one sentence.\n</prompt>\n"
        "<context>\nThe asker is a child.\n</context>")
    c1, c2 = r1["messages"][0]["content"], r2["messages"][0]["content"]
    assert c2[:len(c1) - 1] == c1[:-1] and _breakpoints(r2) == ["system[0]", "content[1]", "content[2]"]
    assert ("#1 reject: one sentence, plain words\n<answer>\nParis is the capital of France.\n</answer>\n"
            "  judge: reject\n    [constitution] rule 1: explain why, for a child") in c2[2]["text"]


def test_the_llm_critic_sees_the_patch_diff_the_answer_and_the_task_as_its_kind_renders_it() -> None:
    options = ClaudeOptions(constitution=["Never weaken a test."])
    patch = Patch(edits=(Edit(path="calc.py", search="return a - b", replace="return a + b"),))
    cand = Candidate(id="c1", task=CODE_TASK, round=1, index=0, text="", rationale="add must add", artifact=patch)
    body = critic_request(options, cand, None)["messages"][0]["content"]
    assert f'<file path="test_calc.py" editable="no">\n{TEST_CALC}</file>' in body[0]["text"]
    shown = body[1]["text"]  # no text on the candidate: the diff is computed from the task's files
    assert "patch (unified diff):\n<diff>\n--- a/calc.py\n+++ b/calc.py\n" in shown
    assert "-    return a - b\n+    return a + b\n" in shown and "rationale: add must add" in shown
    answer = Candidate(id="c2", task=TEXT_TASK, round=1, index=0, text="Paris.", artifact=Text(text="Paris."))
    body = critic_request(options, answer, None)["messages"][0]["content"]
    assert "<prompt>\nName the capital" in body[0]["text"] and "answer:\n<answer>\nParis.\n</answer>" in body[1]["text"]
    plan = Task(id="p", kind="plan", input={"start": "a", "goal": "b", "operations": []})
    body = critic_request(options, Candidate(id="c3", task=plan, round=1, index=0, steps=("x", "y")), None)
    as_json = json.dumps(plan.input, sort_keys=True, indent=1)  # plans as before
    assert body["messages"][0]["content"][0]["text"] == f"Task p (kind plan):\n{as_json}"
    assert body["messages"][0]["content"][1]["text"].startswith("Candidate c3 (round 1, #1):\nsteps: x -> y\n")


@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
@pytest.mark.parametrize("model", ["claude-sonnet-5-5", "claude-opus-5-5", "claude-opus-4-8", "claude-haiku-4-5"])
async def test_code_and_text_requests_follow_each_models_rules(model: str) -> None:
    with FakeAnthropic(api_key=KEY) as fake:
        fake.responder = lambda body: Reply.tool(body["tools"][0]["name"], {"text": "-", "rationale": "-"})
        options = ClaudeOptions(model=model, base_url=fake.url, api_key_env=KEY_ENV, max_retries=0)
        async with Claude(options, api_key=KEY) as claude:
            for task in (CODE_TASK, TEXT_TASK):
                for refining in (False, True):
                    params = claude.params(refining=refining, **reasoner_request(options, task, 1, 2, [], []))
                    message, _ = await claude.create(params)
                    assert message.stop_reason == "tool_use"
        assert len(fake.message_requests()) == 4 and not fake.errors


# ------------------------------------------------------------------ end to end: the sandbox judges Claude's patches


SAMPLE = json.loads((ROOT / "deploy" / "tasks" / "code" / "median.json").read_text())
SANDBOX = """
[[agents]]
name = "sandbox"
kind = "sandbox-critic"
[agents.options.limits]
timeout = 30
"""


async def test_claude_repairs_a_project_in_round_two_from_the_sandboxs_test_failures(
        fake: FakeAnthropic, nats_url: str, tmp_path: Path) -> None:
    wrong = {"edits": [{"path": "stats.py", "search": "        return s[mid]\n",
                        "replace": "        return s[mid - 1]\n"}], "rationale": "off by one"}
    right = {"edits": [{"path": "stats.py", "search": "if n % 2 == 0:", "replace": "if n % 2 == 1:"}],
             "rationale": "the branches were swapped: odd lengths have one middle"}
    fake.script(Reply.tools("propose_patch", [wrong]), Reply.tools("propose_patch", [right]))
    config = make_config(nats_url, tmp_path / "data", agents=agents(fake.url, k=1, rounds=3) + SANDBOX)
    async with agents_running(config, nats_url), connect(config, servers=[nats_url]) as swarm:
        result = await swarm.submit(SAMPLE, kind="code", task_id="median", timeout=90)
    assert result.status is ResultStatus.ACCEPTED and result.rounds == 2, result.reason
    assert result.answer["files"]["stats.py"] == SAMPLE["files"]["stats.py"].replace("n % 2 == 0", "n % 2 == 1")
    assert "-    if n % 2 == 0:\n+    if n % 2 == 1:\n" in result.answer["patch"]
    assert artifact_of(result.accepted.candidate) == Patch(edits=(  # type: ignore[union-attr]
        Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 1:"),))
    [first] = result.trace[0].candidates
    failed = [r for v in first.verdicts if v.critic == "sandbox" for r in v.reasons]
    assert first.outcome is Decision.REJECT and failed and all(r.code == "test_failed" for r in failed)
    r1, r2 = (r.body for r in fake.message_requests())
    c1, c2 = r1["messages"][0]["content"], r2["messages"][0]["content"]
    assert c2[:len(c1) - 1] == c1[:-1] and _breakpoints(r2) == ["system[0]", "content[1]", "content[2]"]
    for reason in failed:  # the sandbox's test output of round 1, as round 2's prompt shows it
        assert f"[test_failed] {reason.text}" in c2[2]["text"]
    assert "test_median_even: AssertionError: 2 != 2.5" in c2[2]["text"] and "  rules: accept\n" in c2[2]["text"]
    assert "<diff>\n--- a/stats.py\n+++ b/stats.py\n" in c2[2]["text"]
