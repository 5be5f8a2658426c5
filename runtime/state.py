"""The running swarm's state file, `<data_dir>/swarm.json`: how clients find an embedded server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec

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
    path = state_path(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(state))
    os.replace(tmp, path)


def read_state(data_dir: Path) -> SwarmState | None:
    """The state of a live supervisor for `data_dir`, or None (no file, or its process is gone)."""
    try:
        state = msgspec.json.decode(state_path(data_dir).read_bytes(), type=SwarmState)
    except (OSError, msgspec.DecodeError, json.JSONDecodeError):
        return None
    return state if pid_alive(state.pid) else None


def clear_state(data_dir: Path) -> None:
    state_path(data_dir).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
