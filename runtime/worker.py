"""One agent replica as an OS process: `python -m reverie.runtime.worker …` (the supervisor runs it)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .config import SwarmConfig, load_config
from .errors import ReverieError
from .logs import setup_logging
from .serving import serve_agent


async def _run(config: SwarmConfig, name: str, replica: int, servers: list[str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve_agent(config, name, servers=servers, replica=replica) as host:
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(host.crashed.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
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
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config, data_dir=args.data_dir)
        return asyncio.run(_run(config, args.agent, args.replica, args.nats.split(",")))
    except ReverieError as exc:
        print(f"reverie: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
