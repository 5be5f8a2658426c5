"""Processes that are not our children: is one alive, wait for one to exit, stop one.

Waiting goes through a pidfd (Linux): the event loop is told when the process exits, with no
polling, and a signal sent through it can never reach a process that reused the pid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator

__all__ = ["pid_alive", "pidfd", "stop_pid", "wait_pidfd"]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def pidfd(pid: int) -> Iterator[int | None]:
    """A pidfd of process `pid`, closed on exit; None when there is no such process."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


async def wait_pidfd(fd: int) -> None:
    """Return once the process behind pidfd `fd` has exited (the pidfd turns readable)."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await exited
    finally:
        loop.remove_reader(fd)


def _send(fd: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has exited meanwhile
        signal.pidfd_send_signal(fd, sig)


async def stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM a process that is not our child, SIGKILL it if it outlives `grace` seconds;
    return once it has exited."""
    with pidfd(pid) as fd:
        if fd is None:
            return
        _send(fd, signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await wait_pidfd(fd)
        except TimeoutError:
            _send(fd, signal.SIGKILL)
            await wait_pidfd(fd)
