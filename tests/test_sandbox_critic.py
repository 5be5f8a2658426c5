"""The sandbox critic judging code candidates: each run in a real bubblewrap sandbox, the critic
served on a real nats-server, verdicts asked for over the bus as a dreamer asks."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reverie.protocol import Candidate, Codec, Decision, Edit, Error, Patch, Steps, Task, Verdict, new_id
from reverie.runtime import connect, serve_agent

from .conftest import ROOT, make_config

SAMPLE = json.loads((ROOT / "deploy" / "tasks" / "code" / "median.json").read_text())
BUGGY = SAMPLE["files"]["stats.py"]
FIXED = BUGGY.replace("if n % 2 == 0:", "if n % 2 == 1:")

CRITIC = """
[[agents]]
name = "sandbox"
kind = "sandbox-critic"
concurrency = 4
[agents.options.limits]
timeout = 20
processes = 32
"""


@pytest.fixture
async def critic(nats_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    config = make_config(nats_url, tmp_path / "data", agents=CRITIC)
    async with serve_agent(config, "sandbox", servers=[nats_url]) as host, \
            connect(config, servers=[nats_url]) as client:
        host.client = client
        yield host


async def _verdict(host: Any, edits: list[Edit], *, task: dict[str, Any] | None = None) -> Verdict:
    """Ask the critic over the bus, as a dreamer does, for its verdict on one candidate."""
    t = Task(id=new_id(), kind="code", input=task or SAMPLE)
    cand = Candidate(id=new_id(), task=t, round=1, index=0, artifact=Patch(edits=tuple(edits)))
    bus = host.client.bus
    [reply] = await bus.request_many(bus.subjects.candidate(t.id), cand, expect=1, timeout=60.0,
                                     senders=["sandbox"])
    verdict = Codec(Verdict).decode(reply.data)
    assert verdict.candidate_id == cand.id and verdict.critic == "sandbox"
    return verdict


def _task_with(source: str) -> dict[str, Any]:
    """The sample task whose test module also runs `source` when it is imported."""
    return {**SAMPLE, "files": {**SAMPLE["files"], "stats.py": BUGGY + "\n" + source}}


async def test_a_passing_patch_is_accepted(critic: Any) -> None:
    v = await _verdict(critic, [Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 1:")])
    assert v.decision is Decision.ACCEPT and v.reasons == ()


async def test_a_failing_patch_is_rejected_naming_the_failing_tests(critic: Any) -> None:
    v = await _verdict(critic, [Edit(path="stats.py", search="mid = n // 2", replace="mid = n // 2 + 2")])
    assert v.decision is Decision.REJECT
    failed = {r.ops[0] for r in v.reasons if r.code == "test_failed"}
    assert "test_stats.StatsTest.test_median_odd" in failed and "test_stats.StatsTest.test_mean" not in failed
    # the odd case fails inside stats.py (an IndexError): its frames there steer the next round
    [odd] = [r for r in v.reasons if r.ops == ("test_stats.StatsTest.test_median_odd",)]
    assert odd.where and all(w.startswith("stats.py:") for w in odd.where)


async def test_a_patch_that_edits_a_test_is_flagged(critic: Any) -> None:
    v = await _verdict(critic, [Edit(path="test_stats.py", replace="def test_nothing():\n    pass\n")])
    assert v.decision is Decision.FLAG
    assert v.reasons[0].code == "edits_protected" and v.reasons[0].ops == ("test_stats.py",)


async def test_unapplicable_and_unparsable_patches_are_rejected_without_a_run(critic: Any) -> None:
    v = await _verdict(critic, [Edit(path="stats.py", search="no such text", replace="x")])
    assert v.decision is Decision.REJECT and v.reasons[0].code == "patch_failed"
    v = await _verdict(critic, [Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 0")])
    assert v.decision is Decision.REJECT and v.reasons[0].code == "syntax_error"
    assert critic.counters["sandbox.runs"] == 0


async def test_a_candidate_that_opens_a_socket_is_flagged_and_reaches_nothing(critic: Any) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reached: list[bool] = []
    server.close()
    server = await asyncio.start_server(lambda r, w: (reached.append(True), w.close()), "127.0.0.1", port)
    try:
        source = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                  "except OSError:\n    pass\n")
        v = await _verdict(critic, [Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 1:")],
                           task=_task_with(source))
    finally:
        server.close()
    assert v.decision is Decision.FLAG and "network" in {r.code for r in v.reasons}
    assert reached == []


async def test_a_candidate_that_writes_outside_its_dir_is_flagged_and_the_host_untouched(
        critic: Any, tmp_path: Path) -> None:
    target = tmp_path / "outside.txt"
    source = f"try:\n    open({str(target)!r}, 'w').write('pwned')\nexcept OSError:\n    pass\n"
    v = await _verdict(critic, [Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 1:")],
                       task=_task_with(source))
    assert v.decision is Decision.FLAG and "write_outside" in {r.code for r in v.reasons}
    assert not target.exists()


async def test_a_fork_bomb_and_an_infinite_loop_are_bounded(critic: Any) -> None:
    bomb = ("import os, time\nkids = 0\ntry:\n    for _ in range(400):\n        if os.fork() == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        kids += 1\nexcept OSError:\n    pass\n"
            "assert kids < 400, kids\n")
    began = time.monotonic()
    v = await _verdict(critic, [Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 1:")],
                       task={**_task_with(bomb), "timeout": 15})
    # accepted: the module's own `kids < 400` held (the process limit stopped the forks), and the
    # sleeping children died with the sandbox's pid namespace instead of holding the run for 30 s
    assert v.decision is Decision.ACCEPT, v.reasons
    assert time.monotonic() - began < 15
    loop = "while True:\n    pass\n"
    v = await _verdict(critic, [Edit(path="stats.py", replace=FIXED + "\n" + loop)], task={**SAMPLE, "timeout": 3})
    assert v.decision is Decision.REJECT and v.reasons[0].code == "timeout"


async def test_identical_candidates_run_once(critic: Any) -> None:
    edit = Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 1:")
    first, second = await asyncio.gather(_verdict(critic, [edit]), _verdict(critic, [edit]))
    assert first.decision is second.decision is Decision.ACCEPT
    assert critic.counters["sandbox.runs"] == 1 and critic.counters["sandbox.cache_hits"] == 1


async def test_plans_are_not_its_business(critic: Any) -> None:
    task = Task(id=new_id(), kind="plan", input={})
    cand = Candidate(id=new_id(), task=task, round=1, index=0, steps=("a",), artifact=Steps(steps=("a",)))
    assert (await critic.agent.evaluate(cand))[0] is Decision.ACCEPT


def test_socket_module_is_what_the_sandbox_hooks() -> None:
    assert hasattr(socket, "create_connection")


async def test_a_test_runner_the_sandbox_lacks_is_a_setup_error_not_a_verdict(critic: Any) -> None:
    t = Task(id=new_id(), kind="code", input={**SAMPLE, "test": "python -m no_such_runner -q"})
    cand = Candidate(id=new_id(), task=t, round=1, index=0,
                     artifact=Patch(edits=(Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 1:"),)))
    bus = critic.client.bus
    [reply] = await bus.request_many(bus.subjects.candidate(t.id), cand, expect=1, timeout=60.0, senders=["sandbox"])
    error = Codec(Verdict | Error).decode(reply.data)
    assert isinstance(error, Error) and error.code == "sandbox_setup"
    assert "no 'no_such_runner'" in error.message and "`python`" in error.message


async def test_a_candidate_that_exits_0_before_the_tests_run_is_not_accepted(critic: Any) -> None:
    early = "import os\nos._exit(0)\n"
    v = await _verdict(critic, [Edit(path="stats.py", replace=BUGGY + "\n" + early)])
    assert v.decision is Decision.REJECT and v.reasons[0].code == "crash"
    assert "unittest reported no run" in v.reasons[0].text
    pytest_task = {**SAMPLE, "test": "python -m pytest -q"}
    v = await _verdict(critic, [Edit(path="stats.py", replace=BUGGY + "\n" + early)], task=pytest_task)
    assert v.decision is Decision.REJECT and "pytest reported no passing run" in v.reasons[0].text
    v = await _verdict(critic, [Edit(path="stats.py", search="if n % 2 == 0:", replace="if n % 2 == 1:")],
                       task=pytest_task)
    assert v.decision is Decision.ACCEPT  # a real passing run under pytest
