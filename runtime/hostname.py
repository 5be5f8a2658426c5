"""The name of the host a process runs on, as the swarm knows it (`reverie up --host-name`)."""

from __future__ import annotations

import os
import socket

__all__ = ["HOST_ENV", "host_name"]

HOST_ENV = "REVERIE_HOST"
"""The host's name as the supervisor tells its agents (shown by `reverie status`)."""


def host_name(explicit: str | None = None) -> str:
    """`explicit`, else `$REVERIE_HOST`, else the machine's hostname."""
    return explicit or os.environ.get(HOST_ENV) or socket.gethostname()
