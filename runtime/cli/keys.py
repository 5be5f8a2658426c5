"""`reverie keys CONFIG init|add|revoke|rotate|list`: the swarm's identities and content keys.

Only public facts are printed (names, roles, serials, key ids); private keys stay in their
0600 files under `<data_dir>/keys/`."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click
import msgspec

from ..bus.credentials import ensure_users, seed_dir
from ..config import SwarmConfig, load_config
from ..gossip.keystore import YEAR, KeyStore
from ..gossip.provision import members_of
from ..swarm.permissions import authorization_block
from ..swarm.tls import ensure_server_cert
from .groups import ConfigGroup

__all__ = ["add", "init", "keys", "list_members", "nats_config", "revoke", "rotate", "server_cert"]


def _open(obj: tuple[Any, ...], check_agents: bool = False) -> tuple[SwarmConfig, KeyStore, bool]:
    config, data_dir, as_json = obj
    cfg = load_config(config, data_dir=data_dir, check_agents=check_agents)
    return cfg, KeyStore(cfg.data_path / "keys"), as_json


def _report(store: KeyStore, as_json: bool, headline: str) -> None:
    members = store.members()
    if as_json:
        click.echo(json.dumps({"current_key": store.current_key_id(), "members": msgspec.to_builtins(members)}))
        return
    click.echo(headline)
    for m in members:
        until = datetime.datetime.fromtimestamp(m.expires_at, datetime.UTC).date()
        click.echo(f"  {m.name:<16} {','.join(m.roles):<10} serial {m.serial:<20} until {until}"
                   + ("  REVOKED" if m.revoked else f"  keys {len(m.content_keys)}"))


@click.group(cls=ConfigGroup)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Override the config's data_dir.")
@click.pass_context
def keys(ctx: click.Context, config: Path, as_json: bool, data_dir: Path | None) -> None:
    """Swarm key, agent keys and certificates, content keys."""
    ctx.obj = (config, data_dir, as_json)


@keys.command()
@click.option("--ttl-days", default=365.0, show_default=True, help="Certificate lifetime.")
@click.pass_obj
def init(obj: tuple[Any, ...], ttl_days: float) -> None:
    """Create the swarm key and, for every agent in CONFIG, keys and a certificate; and the
    NKey seed of every NATS user (each agent, `_client`, `_admin`)."""
    cfg, store, as_json = _open(obj, check_agents=True)
    store.init(members_of(cfg), ttl=ttl_days * 24 * 3600)
    nats_users = ensure_users(cfg)
    _report(store, as_json, f"keys for swarm {cfg.swarm!r} in {store.root} (content key {store.current_key_id()})")
    if not as_json:
        click.echo(f"NATS users {', '.join(nats_users)}: seeds in {seed_dir(cfg)}")


@keys.command()
@click.argument("name")
@click.option("--role", "roles", multiple=True, default=("agent",), show_default=True)
@click.option("--ttl-days", default=YEAR / 86400, show_default=True)
@click.pass_obj
def add(obj: tuple[Any, ...], name: str, roles: tuple[str, ...], ttl_days: float) -> None:
    """Certify a new member NAME and give it the current content key."""
    _, store, as_json = _open(obj)
    store.add(name, tuple(roles), ttl=ttl_days * 24 * 3600)
    _report(store, as_json, f"certified {name}")


@keys.command()
@click.argument("name")
@click.pass_obj
def revoke(obj: tuple[Any, ...], name: str) -> None:
    """Revoke NAME's certificate; the content key rotates past it."""
    _, store, as_json = _open(obj)
    key_id = store.revoke(name)
    _report(store, as_json, f"revoked {name}; new content key {key_id}")


@keys.command()
@click.pass_obj
def rotate(obj: tuple[Any, ...]) -> None:
    """A new content key for every valid member (old keys stay readable)."""
    _, store, as_json = _open(obj)
    key_id = store.rotate()
    _report(store, as_json, f"new content key {key_id}")


@keys.command(name="list")
@click.pass_obj
def list_members(obj: tuple[Any, ...]) -> None:
    """Members, their certificates and content keys."""
    _, store, as_json = _open(obj)
    _report(store, as_json, f"keys in {store.root} (content key {store.current_key_id()})")


@keys.command(name="nats-config")
@click.pass_obj
def nats_config(obj: tuple[Any, ...]) -> None:
    """Print the `authorization` block for an existing NATS deployment's server config:
    one NKey user per agent, `_client` and `_admin`, each with its subject permissions.
    Creates missing seeds; prints public keys only."""
    config, data_dir, as_json = obj
    cfg = load_config(config, data_dir=data_dir)
    block = authorization_block(cfg, ensure_users(cfg))
    if as_json:
        click.echo(json.dumps({"authorization": block}, indent=2))
        return
    folder = seed_dir(cfg)
    click.echo(f"# swarm {cfg.swarm!r}: NATS users and what each may publish and subscribe to.\n"
               "# Paste into every server's config (JetStream enabled); give each agent's host its seed\n"
               f"# from {folder} (<user>.nk, 0600) and set nats.nkey_seed_dir to where it lies there.")
    click.echo(f"authorization: {json.dumps(block, indent=2)}")


@keys.command(name="server-cert")
@click.argument("name")
@click.option("--host", "hosts", multiple=True, required=True, metavar="HOST",
              help="A DNS name or IP address the server is reached at (repeat for each).")
@click.pass_obj
def server_cert(obj: tuple[Any, ...], name: str, hosts: tuple[str, ...]) -> None:
    """Write a TLS certificate and key for NATS server NAME (a cluster node), signed by the
    swarm's CA (created on first use), to <data_dir>/keys/tls/NAME.pem and NAME.key (0600).
    Renewed when run again within 30 days of expiry. Clients trust ca.pem (`nats.ca_file`)."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise click.BadParameter("letters, digits, - and _ only", param_hint="NAME")
    config, data_dir, as_json = obj
    files = ensure_server_cert(load_config(config, data_dir=data_dir, check_agents=False), list(hosts), name=name)
    paths = {"ca": str(files.ca), "cert": str(files.cert), "key": str(files.key)}
    click.echo(json.dumps(paths) if as_json else "\n".join(f"{k:>4}: {v}" for k, v in paths.items()))
