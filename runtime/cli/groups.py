"""The command groups whose CONFIG comes before the subcommand (`reverie task CONFIG show ID`)."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["HELP", "ConfigGroup"]

HELP = ("-h", "--help")


class ConfigGroup(click.Group):
    """A group whose own options may also follow the subcommand's name (`reverie task CONFIG show
    ID --json`), so it parses interspersed arguments. `--help` (or `-h`) after a subcommand's name
    is that subcommand's: the group would otherwise take it for its own and print its help,
    hiding the subcommand's options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = {"allow_interspersed_args": True, "ignore_unknown_options": True}
        kwargs["context_settings"] = {**settings, **kwargs.get("context_settings", {})}
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for i, arg in enumerate(args):
            command = self.commands.get(arg)
            if command is not None and any(a in HELP for a in args[i + 1:]):
                command.make_context(arg, ["--help"], parent=ctx)  # prints its help and exits
        return super().parse_args(ctx, args)
