"""The launcher: the first program in the sandbox. It sets the limits, becomes an unprivileged
user, runs the command as its child and reports how the command ended.

Why a launcher and why a second user: RLIMIT_NPROC is not enforced for a process whose real
uid is the kernel's root (copy_process skips the check when `real_cred->user == INIT_USER`),
even in a user namespace that maps uid 0 -- a fork bomb run as root is unbounded (verified: 100
of 100 forks succeed under a limit of 16, with and without `--unshare-user`). So when reverie
runs as root, bwrap runs without a user namespace (root creates the others itself) and keeps
only CAP_SETUID/CAP_SETGID; the launcher sets the limits, drops the groups and switches to an
unprivileged uid, which empties its capability sets, and from then on the kernel counts and
enforces NPROC (verified: the 16th fork fails with EAGAIN). The uid is one no account uses,
picked per run, so runs do not share a process budget. When reverie is not root, bwrap makes a
user namespace and the launcher only sets the limits: since Linux 5.14 NPROC counts per user
namespace, so only the sandbox's own processes count (verified: 10 processes of the same user
outside do not shrink the budget inside).

The launcher stays as the command's parent rather than exec'ing it: bwrap reports a command
killed by signal n as exit status 128+n, which a command can also exit with; the launcher's
report on its own pipe (close-on-exec, so the command never holds it) says which it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .limits import SandboxLimits

__all__ = ["LAUNCHER", "LaunchStatus", "launcher_argv", "parse_status"]

MiB = 1 << 20

LAUNCHER = r"""
import os, resource as R, signal, sys
status, uid, nproc, cpu, mem, fsize = (int(x) for x in sys.argv[1:7])
cwd, cmd = sys.argv[7], sys.argv[9:]
os.set_inheritable(status, False)
def limit(res, soft, hard):
    top = R.getrlimit(res)[1]
    if top != R.RLIM_INFINITY:
        hard = min(hard, top)  # raising it would take CAP_SYS_RESOURCE, which nobody here has
    R.setrlimit(res, (min(soft, hard), hard))
limit(R.RLIMIT_CPU, cpu, cpu + 1)
limit(R.RLIMIT_AS, mem, mem)
limit(R.RLIMIT_FSIZE, fsize, fsize)
limit(R.RLIMIT_CORE, 0, 0)
if nproc > 0:
    limit(R.RLIMIT_NPROC, nproc, nproc)
if uid >= 0:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid):
        raise SystemExit("reverie sandbox: could not switch to uid %d" % uid)
if cwd:
    os.chdir(cwd)
os.write(status, b"ready\n")
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        os.write(2, ("reverie sandbox: cannot run %r: %s\n" % (cmd[0], e.strerror)).encode())
        os._exit(127 if isinstance(e, FileNotFoundError) else 126)
while True:
    try:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        break
    except InterruptedError:
        pass
os.write(status, b"exit %d\n" % code)
os._exit(code if code >= 0 else 128 - code)
"""
"""Run as `python -I -S -c LAUNCHER status_fd uid nproc cpu_s mem_bytes fsize_bytes cwd -- command...`
(uid -1: stay; nproc 0: no process limit; cwd "": stay). It changes to `cwd` as the new user:
root without capabilities may not enter a workdir that is 0700 and now the sandbox user's."""


class LaunchStatus(msgspec.Struct, frozen=True, kw_only=True):
    ready: bool
    """The limits were set and the user switched: the sandbox itself worked."""
    exit_code: int | None
    """The command's status as `Process.returncode` (minus the signal), None if not reported."""


def launcher_argv(python: str, status_fd: int, limits: SandboxLimits, command: Sequence[str], *,
                  uid: int = -1, limit_processes: bool = True, cwd: str = "") -> list[str]:
    """The argv that runs `command` under the launcher with `python` (isolated mode, no site)."""
    return [python, "-I", "-S", "-c", LAUNCHER, str(status_fd), str(uid),
            str(limits.processes if limit_processes else 0), str(limits.cpu_seconds),
            str(limits.memory_mb * MiB), str(limits.file_size_mb * MiB), cwd, "--", *command]


def parse_status(data: bytes) -> LaunchStatus:
    ready, code = False, None
    for line in data.decode("ascii", "replace").splitlines():
        if line == "ready":
            ready = True
        elif line.startswith("exit "):
            try:
                code = int(line[5:])
            except ValueError:
                pass
    return LaunchStatus(ready=ready, exit_code=code)
