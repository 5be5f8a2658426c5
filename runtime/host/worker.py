"""One agent replica as an OS process: `python -m reverie.runtime.host.worker …` (the supervisor runs it)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys

from ..config import SwarmConfig, load_config
from ..errors import ReverieError
from ..logs import setup_logging
from ..process import pidfd, wait_pidfd
from ..tracing import Tracing, start_tracing
from .serving import serve_agent

__all__ = ["ORPHAN_GRACE", "main"]

ORPHAN_GRACE = 15.0
"""How long an orphaned worker may take to stop cleanly before it exits regardless."""


async def _watch_parent(stop: asyncio.Event) -> None:
    """Stop when the supervisor is gone (SIGKILLed, OOM-killed): it can no longer restart or
    stop this worker, and a new `reverie up` starts a fresh one. The Linux form of
    PR_SET_PDEATHSIG that asyncio can await: a pidfd of the parent turns readable when it exits."""
    parent = os.getppid()
    with pidfd(parent) as fd:
        if fd is not None and os.getppid() == parent:  # still ours: `fd` is the supervisor's
            await wait_pidfd(fd)
    with contextlib.suppress(OSError):  # stderr was a pipe to the supervisor: likely broken now
        print(f"reverie: supervisor (pid {parent}) is gone; stopping", file=sys.stderr)
    stop.set()
    # stuck (say, connecting to the dead server): go anyway
    asyncio.get_running_loop().call_later(ORPHAN_GRACE, os._exit, 3)


async def _run(config: SwarmConfig, name: str, replica: int, servers: list[str], randomize: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.create_task(_watch_parent(stop), name="watch-parent")
    try:
        async with serve_agent(config, name, servers=servers, replica=replica, randomize=randomize) as host:
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(host.crashed.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    if host.crashed.is_set():
        print(f"reverie: agent {name}.{replica} crashed: {host.crash_reason}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reverie-worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--replica", type=int, default=0)
    parser.add_argument("--nats", required=True, help="comma-separated server URLs")
    parser.add_argument("--data-dir")
    parser.add_argument("--in-order", action="store_true", help="try the servers in the order given")
    args = parser.parse_args(argv)
    setup_logging()
    tracing: Tracing | None = None
    try:
        config = load_config(args.config, data_dir=args.data_dir)
        tracing = start_tracing(config, service=args.agent,
                                instance=f"{args.agent}.{args.replica}@{socket.gethostname()}")
        return asyncio.run(_run(config, args.agent, args.replica, args.nats.split(","), not args.in_order))
    except ReverieError as exc:
        print(f"reverie: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if tracing is not None:
            tracing.shutdown()  # exports the spans still batched
    return 0


if __name__ == "__main__":
    sys.exit(main())
