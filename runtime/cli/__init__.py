"""The `reverie` command line."""

from __future__ import annotations

import click

from ..errors import ReverieError
from ..web import web
from .demo import demo
from .init import init
from .keys import keys
from .memory import memory
from .swarm import down, result, status, submit, up
from .tasks import task

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reverie", prog_name="reverie")
def cli() -> None:
    """reverie: an event-driven swarm of dreamers and critics over NATS."""


for command in (init, up, down, submit, result, status, task, demo, memory, keys, web):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    try:
        rc = cli.main(argv, prog_name="reverie", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    except ReverieError as exc:
        click.echo(f"reverie: error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return rc if isinstance(rc, int) else 0

