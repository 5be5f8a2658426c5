"""The running swarm's state file, `<data_dir>/swarm.json`: how clients find an embedded server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec

from ..keyfiles import write_atomic
from ..process import pid_alive

__all__ = ["STATE_FILE", "SwarmState", "clear_state", "orphaned_server", "read_state", "state_path", "write_state"]

STATE_FILE = "swarm.json"


class SwarmState(msgspec.Struct, frozen=True):
    swarm: str
    url: str
    pid: int
    started_at: float
    server_pid: int | None = None


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def write_state(data_dir: Path, state: SwarmState) -> None:
    write_atomic(state_path(data_dir), msgspec.json.encode(state))


def read_state(data_dir: Path) -> SwarmState | None:
    """The state of a live supervisor for `data_dir`, or None (no file, or its process is gone)."""
    try:
        state = msgspec.json.decode(state_path(data_dir).read_bytes(), type=SwarmState)
    except (OSError, msgspec.DecodeError, json.JSONDecodeError):
        return None
    return state if pid_alive(state.pid) else None


def orphaned_server(data_dir: Path) -> int | None:
    """The pid of an embedded nats-server a dead supervisor left running (SIGKILL, OOM), or
    None. Only a process whose command line names this data dir's server config counts, so a
    recycled pid is never taken for it (Linux `/proc`; elsewhere None)."""
    try:
        state = msgspec.json.decode(state_path(data_dir).read_bytes(), type=SwarmState)
    except (OSError, msgspec.DecodeError, json.JSONDecodeError):
        return None
    if state.server_pid is None or pid_alive(state.pid) or not pid_alive(state.server_pid):
        return None
    proc = Path(f"/proc/{state.server_pid}")
    conf = data_dir / "nats" / "nats-server.json"
    try:
        args = proc.joinpath("cmdline").read_bytes().split(b"\0")
        for arg in args:
            if arg.endswith(b"nats-server.json") and os.path.samefile(proc / "cwd" / os.fsdecode(arg), conf):
                return state.server_pid
    except OSError:
        pass
    return None


def clear_state(data_dir: Path) -> None:
    state_path(data_dir).unlink(missing_ok=True)

