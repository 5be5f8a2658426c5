"""Gossip nodes for tests and benches: real keys, real LMDB memories, a real NATS server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from reverie.protocol import Reason
from reverie.runtime import SwarmConfig, parse_config
from reverie.runtime.bus.bus import Bus
from reverie.runtime.gossip.keystore import KeyStore
from reverie.runtime.gossip.node import GossipNode
from reverie.runtime.gossip.provision import ensure_keys
from reverie.runtime.memory import Lesson


def node_config(url: str, data_dir: Path, names: list[str], *, swarm: str = "gsp", interval: float = 0.2,
                fanout: int = 2, max_reply_bytes: int = 256 * 1024) -> SwarmConfig:
    agents = "".join(f'\n[[agents]]\nname = "{n}"\nkind = "rule-critic"\n' for n in names)
    text = (f'swarm = "{swarm}"\n[gossip]\ninterval = {interval}\nfanout = {fanout}\n'
            f'max_reply_bytes = {max_reply_bytes}\n[nats]\nurl = "{url}"\n{agents}')
    return parse_config(text, source="<test>", data_dir=data_dir)


async def open_node(config: SwarmConfig, name: str, url: str) -> tuple[GossipNode, Bus]:
    bus = await Bus.connect([url], swarm=config.swarm, name=f"{config.swarm}.{name}")
    node = await GossipNode.open(config, name, bus)
    assert node is not None, f"no keys for {name}"
    return node, bus


@contextlib.asynccontextmanager
async def gossip_nodes(config: SwarmConfig, url: str, *, serve: bool = True,
                       names: list[str] | None = None) -> AsyncIterator[dict[str, GossipNode]]:
    """A started node per agent of `config` (keys created on first use)."""
    ensure_keys(config)
    nodes: dict[str, GossipNode] = {}
    buses: list[Bus] = []
    try:
        for spec in config.agents:
            if names is None or spec.name in names:
                node, bus = await open_node(config, spec.name, url)
                nodes[spec.name] = node
                buses.append(bus)
                await node.start(serve=serve)
        yield nodes
    finally:
        for node in nodes.values():
            await node.stop()
        for bus in buses:
            await bus.close()


def keystore(config: SwarmConfig) -> KeyStore:
    return KeyStore(config.data_path / "keys")


def lesson(i: int, *, text: str = "drop_table needs a backup first", features: tuple[str, ...] = ("op:drop_table",),
           topic: str = "order") -> Lesson:
    return Lesson(id=f"l{i}", topic=topic, reason=Reason(code=topic, text=text), features=features)
