"""Who connects to the bus, and how: one NKey user per agent, plus `_client` (`reverie
submit/status/task`, `reverie.runtime.connect`) and `_admin` (the supervisor). Seeds live in
0600 files `<data_dir>/keys/nats/<user>.nk`; the SSL context verifies the swarm's servers.
`connect_bus` is the one way a process of the swarm connects. Where each user may publish is
`reverie.runtime.swarm.permissions`. See README, "Securing the bus"."""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import nkeys

from ..config import SwarmConfig, config_path
from ..errors import ConfigError
from ..keyfiles import KeyFileMissing, create_private, fsync_dir
from .bus import Bus, read_seed

__all__ = ["ADMIN", "CLIENT", "client_context", "connect_bus", "ensure_users", "public_key", "seed_dir", "seed_for",
           "seed_path", "tls_dir", "users"]

CLIENT = "_client"
"""The user of every client connection: submit tasks, read results, status, pause/resume."""
ADMIN = "_admin"
"""The supervisor's user: creates the streams and the task-control bucket; may do anything."""



def seed_dir(config: SwarmConfig) -> Path:
    """`nats.nkey_seed_dir` if set, else `<data_dir>/keys/nats`."""
    if config.nats.nkey_seed_dir:
        return config_path(config, config.nats.nkey_seed_dir)
    return config.data_path / "keys" / "nats"


def seed_path(config: SwarmConfig, user: str) -> Path:
    return seed_dir(config) / f"{user}.nk"


def users(config: SwarmConfig) -> list[str]:
    """Every NATS user of the swarm: its agents, then `_client` and `_admin`."""
    names = [spec.name for spec in config.agents]
    for i, name in enumerate(names):
        if name in (CLIENT, ADMIN):
            raise ConfigError(config.source, f"$.agents[{i}].name",
                              f"{name!r} is reserved for the swarm's own NATS users")
    return [*names, CLIENT, ADMIN]


def public_key(seed: bytes) -> str:
    kp = nkeys.from_seed(bytearray(seed))
    try:
        return str(kp.public_key.decode())
    finally:
        kp.wipe()


def ensure_users(config: SwarmConfig) -> dict[str, str]:
    """Create the seed of every user that has none (idempotent); return their public keys."""
    folder = seed_dir(config)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys: dict[str, str] = {}
    created = False
    for user in users(config):
        path = folder / f"{user}.nk"
        try:
            seed = read_seed(path)
        except KeyFileMissing:
            seed = bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
            create_private(path, seed)
            created = True
        keys[user] = public_key(seed)
    if created:
        fsync_dir(folder)
    return keys


def seed_for(config: SwarmConfig, user: str) -> Path | None:
    """The seed file a connection of `user` authenticates with, or None to connect without:
    for the embedded server when `nats.auth` is on; for an existing deployment when
    `nats.nkey_seed_dir` is set."""
    nats = config.nats
    if nats.embedded and not nats.auth:
        return None
    if not nats.embedded and not nats.nkey_seed_dir:
        return None
    return seed_path(config, user)


def tls_dir(config: SwarmConfig) -> Path:
    return config.data_path / "keys" / "tls"


def client_context(config: SwarmConfig, servers: list[str]) -> ssl.SSLContext | None:
    """The SSL context that verifies the swarm's servers: `nats.ca_file` for an existing
    deployment; the swarm's CA when the embedded server speaks TLS (its URL is `tls://`)."""
    if config.nats.ca_file:
        return ssl.create_default_context(cafile=str(config_path(config, config.nats.ca_file)))
    if config.nats.embedded and any(url.startswith("tls://") for url in servers):
        return ssl.create_default_context(cafile=str(tls_dir(config) / "ca.pem"))
    return None


async def connect_bus(config: SwarmConfig, user: str, servers: list[str], *, name: str,
                      seed: Path | None = None, randomize: bool = True,
                      on_reconnect: Callable[[], Awaitable[None]] | None = None) -> Bus:
    """Connect as `user` with its seed (`seed_for`, unless `seed` is given) and the swarm's
    SSL context, with the config's message size and connect timeout."""
    return await Bus.connect(servers, swarm=config.swarm, name=name, user=user,
                             nkeys_seed=seed if seed is not None else seed_for(config, user),
                             tls=client_context(config, servers), max_message_bytes=config.max_message_bytes,
                             connect_timeout=config.nats.connect_timeout, randomize=randomize,
                             on_reconnect=on_reconnect)
