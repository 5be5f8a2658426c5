"""What a sandboxed run may use: the isolation mode and the resource limits."""

from __future__ import annotations

import enum

import msgspec

__all__ = ["Isolation", "SandboxLimits"]


class Isolation(enum.StrEnum):
    BWRAP = "bwrap"
    """bubblewrap: own namespaces (no network), a read-only view of the system, limits."""
    NONE = "none"
    """A plain subprocess with a scrubbed environment and rlimits: NO isolation, loudly logged."""


class SandboxLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timeout: float = 60.0
    """Wall clock seconds; then the whole process tree is killed."""
    cpu_seconds: int = 60
    """RLIMIT_CPU of each process (SIGXCPU, then SIGKILL a second later)."""
    memory_mb: int = 2048
    """RLIMIT_AS of each process: address space, not resident memory."""
    processes: int = 64
    """Processes and threads at once, the launcher's one included (RLIMIT_NPROC, enforced as root
    too: see `reverie.runtime.sandbox.launcher`). Not applied with Isolation.NONE."""
    file_size_mb: int = 64
    """RLIMIT_FSIZE: the largest file a process may write."""
    output_bytes: int = 65536
    """How much of the end of stdout and of stderr is kept."""
    tmp_mb: int = 256
    """Size of the private tmpfs on /tmp and on /dev/shm (memory, not disk)."""

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, not {self.timeout!r}")
        for name in ("cpu_seconds", "memory_mb", "processes", "file_size_mb", "output_bytes", "tmp_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)!r}")
