"""`reverie web CONFIG`: serve the web view of a running swarm until Ctrl-C or SIGTERM; with
`--allow-actions`, submit, pause, resume and cancel too, behind a bearer token."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
from pathlib import Path

import click

from ..client import connect
from ..config import SwarmConfig, load_config
from .app import WebServer, create_app

__all__ = ["DEFAULT_PORT", "TOKEN_ENV", "actions_token", "run_web", "web"]

DEFAULT_PORT = 8470
TOKEN_ENV = "REVERIE_WEB_TOKEN"
_TOKEN = re.compile(r"[!-~]+")
"""Printable ASCII without spaces: what travels in an `Authorization` header as typed."""


def actions_token(token_file: Path | None) -> tuple[str, str]:
    """The token for actions and where it came from: `token_file`'s text (stripped), else
    `$REVERIE_WEB_TOKEN`, else a new random one ("generated"). A token is never logged; an
    error names where the token came from, never the token."""
    if token_file is not None:
        try:
            token, source = token_file.read_text().strip(), f"--token-file {token_file}"
        except (OSError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"cannot read --token-file {token_file}: {exc}") from None
    elif os.environ.get(TOKEN_ENV, "").strip():
        token, source = os.environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}"
    else:
        return secrets.token_urlsafe(24), "generated"
    if not _TOKEN.fullmatch(token):
        raise click.ClickException(f"the token from {source} must be printable ASCII without spaces"
                                   + (" (it is empty)" if not token else ""))
    return token, source


async def run_web(config: SwarmConfig, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  actions_token: str | None = None, note: str = "") -> None:
    """Connect to the swarm, serve the app (with actions when `actions_token` is given), print
    `reverie web: URL` once listening (then `note` in parentheses); return on SIGINT/SIGTERM."""
    async with connect(config) as swarm:
        server = WebServer(create_app(swarm, actions_token=actions_token), host=host, port=port,
                           on_listening=lambda url: click.echo(f"reverie web: {url}" + (f"  ({note})" if note else "")))
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
@click.option("--allow-actions", is_flag=True,
              help="Also submit, pause, resume and cancel tasks (each request needs the token).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Read the actions' token from this file (default: ${TOKEN_ENV}, else a new one, printed).")
def web(config: Path, port: int, host: str, allow_actions: bool, token_file: Path | None) -> None:
    """Serve a web view of the running swarm CONFIG: its live agents, the tasks in progress and
    the recent ones, each task's dream tree (rounds, candidates, verdicts), kept current in place.
    Read-only unless --allow-actions. Stop it with Ctrl-C."""
    if token_file is not None and not allow_actions:
        raise click.BadParameter("--token-file goes with --allow-actions", param_hint="--token-file")
    token, note = None, ""
    if allow_actions:
        token, source = actions_token(token_file)
        note = f"actions on; token: {token}" if source == "generated" else f"actions on; token from {source}"
        if host not in ("127.0.0.1", "::1", "localhost"):
            click.echo(f"reverie web: warning: actions on {host} over plain HTTP: the token and the pages "
                       f"travel unencrypted (put it behind TLS, or keep it on loopback)", err=True)
    asyncio.run(run_web(load_config(config, check_agents=False), host=host, port=port, actions_token=token,
                        note=note))
