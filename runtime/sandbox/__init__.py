"""Running an untrusted command -- typically a project's tests -- in a workdir, isolated with
bubblewrap, under limits, and learning what it tried that it may not.

    sandbox = Sandbox()                 # Isolation.BWRAP, SandboxLimits()
    await sandbox.check()               # SandboxUnavailable if bwrap cannot isolate here
    outcome = await sandbox.run(workdir, "python -m pytest -q")
    outcome.passed, outcome.stdout, outcome.violations

What the command gets (see `bwrap`, `launcher`, `audit`): no network (its own network
namespace has only a loopback) and its own pid, ipc, uts and cgroup namespaces; a read-only
view of the system, a minimal /etc and the interpreter, nothing else of the host; the workdir
read-write at /sandbox/work, its cwd; a private, size-limited /tmp (also HOME); an environment
built from scratch; no capabilities, no new privileges; RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE and
a process limit that holds as root too; a wall clock that kills its whole process tree (the pid
namespace dies with bwrap). Violations -- attempts at the network or at writing outside -- are
reported by an audit hook in every Python process, and by errno texts in the output otherwise.

`Isolation.NONE` runs the command as a plain subprocess (scrubbed environment, rlimits but no
process limit, the timeout, the tripwire) and says so loudly: it is for machines without
namespaces, chosen knowingly. Imports nothing of `reverie.agents`.
"""

from .audit import hook_source, parse_reports, scan_output
from .bwrap import WORKDIR, bwrap_argv, find_bwrap
from .interpreter import Interpreter, find_interpreter
from .limits import Isolation, SandboxLimits
from .outcome import RunOutcome, SandboxUnavailable, Violation
from .sandbox import Sandbox, sandbox_env
from .tree import write_tree

__all__ = [
    "WORKDIR",
    "Interpreter",
    "Isolation",
    "RunOutcome",
    "Sandbox",
    "SandboxLimits",
    "SandboxUnavailable",
    "Violation",
    "bwrap_argv",
    "find_bwrap",
    "find_interpreter",
    "hook_source",
    "parse_reports",
    "sandbox_env",
    "scan_output",
    "write_tree",
]
