"""`reverie web CONFIG`: serve the read-only web view of a running swarm until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from ..client import connect
from ..config import SwarmConfig, load_config
from .app import WebServer, create_app

__all__ = ["DEFAULT_PORT", "run_web", "web"]

DEFAULT_PORT = 8470


async def run_web(config: SwarmConfig, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Connect to the swarm, serve the app, print where once listening; return on SIGINT/SIGTERM."""
    async with connect(config) as swarm:
        server = WebServer(create_app(swarm), host=host, port=port,
                           on_listening=lambda url: click.echo(f"reverie web: {url}"))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        try:
            await server.serve()
        except SystemExit:  # uvicorn's answer to a port it cannot bind (it logged the reason)
            raise click.ClickException(f"cannot listen on {host}:{port}") from None
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="TCP port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def web(config: Path, port: int, host: str) -> None:
    """Serve a read-only web view of the running swarm CONFIG: its live agents, the recent tasks
    and each task's dream tree (rounds, candidates, verdicts). Stop it with Ctrl-C."""
    asyncio.run(run_web(load_config(config, check_agents=False), host=host, port=port))
