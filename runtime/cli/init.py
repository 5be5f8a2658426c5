"""`reverie init [DIR]`: a starter swarm for a user who installed the wheel and has no checkout."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click

__all__ = ["init", "write_starter"]

CONFIG_NAME = "swarm.toml"


def write_starter(folder: Path) -> list[Path]:
    """The packaged local swarm's config (its data under `folder/data`) and the sample tasks
    (a change plan and a small project with a failing test) in `folder`; the files written.
    Raises FileExistsError rather than overwrite anything."""
    deploy = resources.files("reverie.deploy")
    config = deploy.joinpath("local.toml").read_text()
    files = {
        folder / CONFIG_NAME: config.replace('swarm = "local"\n', 'swarm = "local"\ndata_dir = "data"\n', 1),
        folder / "tasks" / "db-migration.json": deploy.joinpath("tasks", "db-migration.json").read_text(),
    }
    code = json.loads(deploy.joinpath("tasks", "code", "median.json").read_text())
    for name, content in code["files"].items():
        files[folder / "median" / name] = content
    taken = [p for p in files if p.exists()]
    if taken:
        raise FileExistsError(f"{taken[0]} exists: reverie init writes only new files (pick an empty folder)")
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return list(files)


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
def init(folder: Path) -> None:
    """Write a starter swarm into FOLDER: swarm.toml (embedded NATS, offline dreamer, plan critics,
    sandbox critic), a sample plan task and a small project with a failing test."""
    try:
        written = write_starter(folder)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")
    config = folder / CONFIG_NAME
    click.echo(f"""
next:
  reverie up {config}                                   # start the swarm (Ctrl-C or `reverie down` stops it)
  reverie submit {config} @{folder / 'tasks' / 'db-migration.json'} --wait   # plan a change
  reverie submit {config} --code {folder / 'median'} --test "python -m unittest" --wait --apply   # repair a test""")
