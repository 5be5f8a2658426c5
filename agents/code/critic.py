"""The sandbox critic: runs a code candidate's tests in an isolated sandbox and judges by them.

It applies the candidate to a fresh copy of the task's files and runs the task's test command
under `reverie.runtime.sandbox` (bubblewrap: no network, a read-only system, a private temp
dir, no host environment, limits on CPU, memory, processes and file size, a wall-clock timeout
that kills the whole tree). Verdicts:

- accept when the tests pass;
- reject with machine-readable reasons: `test_failed` (one per failing test, naming it, with a
  trimmed message and the frames in editable files), `patch_failed`, `syntax_error`, `timeout`,
  `crash`;
- flag as harmful a candidate that edits a file the task does not let it edit (tests included),
  or whose run tried what the sandbox forbids (`network`, `write_outside`).

The same files under the same command are never run twice: runs are cached (in flight too, so
a repeated request for a verdict waits for the first run). Replicas share a queue group, so a
round's candidates run in parallel across the critic's `concurrency` and its replicas.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import os
import re
import shlex
import shutil
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import msgspec

from reverie.protocol import Candidate, Decision, Error, Patch, Reason, ReverieError, Verdict, artifact_of
from reverie.runtime import Agent, handler
from reverie.runtime.sandbox import Isolation, RunOutcome, Sandbox, SandboxLimits, write_tree

from .patch import PatchFailed, apply_edits, changed_paths
from .repair import fingerprint
from .task import CodeInput, CodeInputError, parse_code
from .testout import parse_test_output

__all__ = ["PYTEST_ADDOPTS", "SandboxCritic", "SandboxCriticOptions", "TestsCannotRun", "judge_outcome"]

PYTEST_ADDOPTS = "-rfE --tb=short -p no:cacheprovider"
"""Given to the tests' environment: pytest then names every failure and its frames briefly."""

MAX_REASONS = 10


class SandboxCriticOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    isolation: Literal["bwrap", "none"] = "bwrap"
    """`none` runs candidates' tests unisolated, on this host: only for a machine without user
    namespaces, knowingly; it is logged loudly at every start."""
    limits: SandboxLimits = SandboxLimits()
    """CPU, memory, processes, file size; `timeout` is the most a task's own `timeout` may ask."""
    python: str | None = None
    """The interpreter the tests see (its prefix, read-only); default: the critic's own."""
    allow_loopback: bool = False
    """Let tests talk to the sandbox's own loopback (a project whose tests run a local server);
    by default any connection attempt counts as reaching for the network, and flags."""
    cache_size: Annotated[int, msgspec.Meta(ge=0)] = 1024


Judgement = tuple[Decision, float, tuple[Reason, ...]]


class SandboxCritic(Agent):
    role: ClassVar[str] = "critic"
    Options = SandboxCriticOptions

    async def on_start(self) -> None:
        opts: SandboxCriticOptions = self.options
        self.sandbox = Sandbox(Isolation(opts.isolation), limits=opts.limits, python=opts.python, log=self.log,
                               allow_loopback=opts.allow_loopback)
        await self.sandbox.check()  # no isolation here: refuse to start, saying why
        self._runs: OrderedDict[str, asyncio.Future[Judgement]] = OrderedDict()

    @handler("dream.*.cand", concurrency=max(os.cpu_count() or 1, 1))
    async def judge(self, cand: Candidate) -> Verdict | Error:
        try:
            decision, score, reasons = await self.evaluate(cand)
        except TestsCannotRun as exc:  # not the candidate's fault: no verdict, and the dreamer says why
            self.ctx.counters["sandbox.setup_errors"] += 1
            self.log.warning("cannot judge %s: %s", cand.id, exc)
            return Error(code="sandbox_setup", message=str(exc), subject=cand.id)
        return Verdict(candidate_id=cand.id, critic=self.ctx.name, decision=decision, score=score, reasons=reasons)

    async def evaluate(self, cand: Candidate) -> Judgement:
        art = artifact_of(cand)
        if not isinstance(art, Patch):
            return Decision.ACCEPT, 1.0, ()  # not code: nothing to run
        try:
            task = parse_code(cand.task.input)
        except CodeInputError as exc:
            return Decision.REJECT, 0.0, (Reason(code="malformed", text=f"the code task is invalid: {exc}"),)
        editable = set(task.editable_paths)
        protected = sorted({e.path for e in art.edits if e.path not in editable})
        if protected:
            self.ctx.counters["sandbox.protected_edits"] += 1
            why = f"edits files the task does not let it edit: {', '.join(protected)}"
            return Decision.FLAG, 0.0, (Reason(code="edits_protected", ops=tuple(protected), text=why),)
        try:
            after = apply_edits(task.files, art.edits)
        except PatchFailed as exc:
            return Decision.REJECT, 0.0, (Reason(code="patch_failed", text=str(exc), ops=(exc.path,)),)
        broken = _syntax_errors(task.files, after)
        if broken:
            return Decision.REJECT, 0.0, broken
        return await self._cached(task, after)

    async def _cached(self, task: CodeInput, after: dict[str, str]) -> Judgement:
        timeout = min(task.timeout, self.options.limits.timeout)
        key = hashlib.sha256(f"{fingerprint(after)}\0{task.test}\0{timeout}".encode()).hexdigest()
        hit = self._runs.get(key)
        if hit is not None:
            self.ctx.counters["sandbox.cache_hits"] += 1
            self._runs.move_to_end(key)
            return await asyncio.shield(hit)
        future: asyncio.Future[Judgement] = asyncio.get_running_loop().create_future()
        self._runs[key] = future
        try:
            outcome = await self._run(task, after, timeout)
            judgement = judge_outcome(outcome, task)
        except BaseException as exc:
            del self._runs[key]  # a run that did not finish is not remembered
            future.set_exception(exc)
            future.exception()  # retrieved: waiters see it, nobody else must
            raise
        future.set_result(judgement)
        while len(self._runs) > self.options.cache_size:
            self._runs.popitem(last=False)
        return judgement

    async def _run(self, task: CodeInput, files: dict[str, str], seconds: float) -> RunOutcome:
        self.ctx.counters["sandbox.runs"] += 1
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="reverie-sandbox-"))
        try:
            await asyncio.to_thread(write_tree, workdir, files)
            limits = msgspec.structs.replace(self.options.limits, timeout=seconds)
            started = time.monotonic()
            outcome = await self.sandbox.run(workdir, task.test, limits=limits, env={"PYTEST_ADDOPTS": PYTEST_ADDOPTS})
            self.ctx.observe("sandbox_run", time.monotonic() - started)  # reverie_sandbox_run_seconds
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        if outcome.violations:
            self.ctx.counters["sandbox.violations"] += 1
        if outcome.timed_out:
            self.ctx.counters["sandbox.timeouts"] += 1
        return outcome


class TestsCannotRun(ReverieError):
    """The task's test command cannot run in this critic's sandbox at all (its program or test
    runner is missing): no candidate can be judged until the critic's set-up changes."""


def _cannot_run(outcome: RunOutcome, task: CodeInput) -> str:
    """Why the test command could not start, or "" (it ran, and failed)."""
    if outcome.exit_code == 127:
        return f"the test command {shlex.split(task.test)[0]!r} was not found in the sandbox"
    runner = _runner(task)
    if runner and f"No module named {runner}" in outcome.stderr + outcome.stdout:
        return (f"the interpreter in the sandbox has no {runner!r} (set the sandbox critic's `python` to an "
                f"interpreter with the project's test dependencies, or install {runner} beside reverie)")
    return ""


_PYTEST_PASSED = re.compile(r"\b[1-9]\d* passed\b")
_PYTEST_BAD = re.compile(r"\b[1-9]\d* (failed|errors?)\b")
_UNITTEST_RAN = re.compile(r"^Ran [1-9]\d* tests? in ", re.M)
_UNITTEST_OK = re.compile(r"^OK\b", re.M)


def _runner(task: CodeInput) -> str:
    """The test runner the task's command starts: the module of `python -m X`, else the program's name."""
    argv = shlex.split(task.test)
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return argv[0].rsplit("/", 1)[-1] if argv else ""


def _unproven(outcome: RunOutcome, task: CodeInput) -> str:
    """Why a run that exited 0 does not show its tests passed ("" when it does): pytest and
    unittest print a summary of what ran; a run of theirs without one never ran the tests (a
    candidate that calls `os._exit(0)` on import). Other test commands are taken at their word."""
    runner = _runner(task)
    output = f"{outcome.stdout}\n{outcome.stderr}"
    if runner in ("pytest", "py.test"):
        if _PYTEST_PASSED.search(output) and not _PYTEST_BAD.search(output):
            return ""
        return "the test command exited 0 but pytest reported no passing run (did the code end the process early?)"
    if runner == "unittest":
        if _UNITTEST_RAN.search(output) and _UNITTEST_OK.search(output):
            return ""
        return "the test command exited 0 but unittest reported no run (did the code end the process early?)"
    return ""


def judge_outcome(outcome: RunOutcome, task: CodeInput) -> Judgement:
    """The verdict on one sandboxed test run of a candidate. Raises `TestsCannotRun`."""
    if outcome.violations:
        return Decision.FLAG, 0.0, tuple(Reason(code=v.kind, text=f"the run tried what the sandbox forbids: {v.detail}")
                                         for v in outcome.violations[:MAX_REASONS])
    if outcome.timed_out:
        return Decision.REJECT, 0.0, (Reason(code="timeout", limit=min(task.timeout, outcome.elapsed),
                                             text=f"the tests did not finish within {task.timeout:g}s"),)
    if outcome.passed:
        unproven = _unproven(outcome, task)
        if unproven:  # exit 0 is not enough: a candidate can exit 0 itself before any test runs
            return Decision.REJECT, 0.0, (Reason(code="crash", text=unproven),)
        return Decision.ACCEPT, 1.0, ()
    cannot = _cannot_run(outcome, task)
    if cannot:
        raise TestsCannotRun(cannot)
    output = f"{outcome.stdout}\n{outcome.stderr}"
    failures = parse_test_output(output, task.editable_paths, root=Sandbox.WORKDIR)
    if failures:
        reasons = tuple(Reason(code="test_failed", text=f"{f.test}: {f.message}" if f.test else f.message,
                               ops=(f.test,) if f.test else (), where=f.frames) for f in failures[:MAX_REASONS])
        return Decision.REJECT, 0.0, reasons
    tail = _tail(output)
    if outcome.signal is not None or (outcome.exit_code or 0) > 1:
        what = f"signal {outcome.signal}" if outcome.signal is not None else f"exit code {outcome.exit_code}"
        return Decision.REJECT, 0.0, (Reason(code="crash", text=f"the test command ended with {what}: {tail}"),)
    return Decision.REJECT, 0.0, (Reason(code="test_failed", text=f"the tests failed (exit code {outcome.exit_code}): "
                                         f"{tail}"),)


def _syntax_errors(before: dict[str, str], after: dict[str, str]) -> tuple[Reason, ...]:
    found = []
    for path in changed_paths(before, after):
        if path.endswith(".py"):
            try:
                ast.parse(after[path], filename=path)
            except SyntaxError as exc:
                found.append(Reason(code="syntax_error", text=f"{path}:{exc.lineno}: {exc.msg}", ops=(path,),
                                    where=(f"{path}:{exc.lineno}",)))
    return tuple(found)


def _tail(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-limit:]
