"""Processes that are not our children: is one alive, stop one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM a process that is not our child, then SIGKILL it if it outlives `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        await asyncio.sleep(0.05)
