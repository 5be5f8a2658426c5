"""Running one process tree under a wall clock, without blocking the event loop: its stdout
and stderr (tails kept), the launcher's status pipe and the report FIFO are read concurrently;
on the timeout, or when it ends, its whole process group is SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence

import msgspec

__all__ = ["DRAIN_GRACE", "RawRun", "run_tree"]

DRAIN_GRACE = 2.0
"""Seconds to wait, after the process ended, for its pipes to close (a process that escaped
the group without isolation may hold them forever)."""


class RawRun(msgspec.Struct, frozen=True, kw_only=True):
    returncode: int | None
    """Of the process started (bwrap, or the launcher); None when the timeout killed it."""
    timed_out: bool
    elapsed: float
    stdout: bytes
    stderr: bytes
    status: bytes
    reports: bytes


class _Collector(asyncio.Protocol):
    """Keeps the last (or first) `limit` bytes read from a pipe."""

    def __init__(self, limit: int, *, head: bool = False) -> None:
        self.limit = limit
        self.head = head
        self.data = bytearray()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.head:
            self.data += data[:max(0, self.limit - len(self.data))]
        else:
            self.data += data[-self.limit:]
            if len(self.data) > self.limit:
                del self.data[:len(self.data) - self.limit]

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _attach(fd: int, limit: int, *, head: bool = False) -> tuple[asyncio.BaseTransport, _Collector]:
    """Read `fd` (owned from now on: the transport closes it) into a collector."""
    try:
        pipe = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return await asyncio.get_running_loop().connect_read_pipe(lambda: _Collector(limit, head=head), pipe)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run_tree(argv_for: Callable[[int], Sequence[str]], *, env: Mapping[str, str], cwd: str,
                   wall_clock: float, output_bytes: int, reports: tuple[int, int],
                   report_bytes: int = 1 << 18) -> RawRun:
    """Start `argv_for(status_fd)` in a new session; SIGKILL its group after `wall_clock` s.
    `reports` are the read end of the report FIFO and a write end that keeps it from reading
    end-of-file before the process has started (both owned from now on). Returns with the
    process reaped and its group killed."""
    opened: list[asyncio.BaseTransport] = []
    report_r, report_w = reports
    pipes: list[int] = [report_w]
    try:
        transport, report_collector = await _attach(report_r, report_bytes, head=True)
        opened.append(transport)
        ends = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        pipes += [fd for pair in ends for fd in pair]
        (out_r, out_w), (err_r, err_w), (status_r, status_w) = ends
        readers = []
        for fd, limit in ((out_r, output_bytes), (err_r, output_bytes), (status_r, 4096)):
            pipes.remove(fd)
            transport, collector = await _attach(fd, limit)
            opened.append(transport)
            readers.append(collector)
        start = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv_for(status_w), stdin=asyncio.subprocess.DEVNULL, stdout=out_w, stderr=err_w,
            env=dict(env), cwd=cwd, start_new_session=True, pass_fds=(status_w,))
        for fd in (out_w, err_w, status_w):
            pipes.remove(fd)
            os.close(fd)
        timed_out = False
        try:
            async with asyncio.timeout(wall_clock):
                returncode: int | None = await proc.wait()
        except TimeoutError:
            timed_out, returncode = True, None
        finally:
            _killpg(proc.pid)
            await proc.wait()
        elapsed = time.monotonic() - start
        pipes.remove(report_w)
        os.close(report_w)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_GRACE):
                await asyncio.gather(*(c.closed for c in (*readers, report_collector)))
        stdout, stderr, status = (bytes(r.data) for r in readers)
        return RawRun(returncode=returncode, timed_out=timed_out, elapsed=elapsed, stdout=stdout,
                      stderr=stderr, status=status, reports=bytes(report_collector.data))
    finally:
        for fd in pipes:
            os.close(fd)
        for transport in opened:
            transport.close()
