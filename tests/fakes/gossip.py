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
from reverie.runtime.memory import Lesson, Memory

__all__ = ["gossip_nodes", "keystore", "lesson", "node_config", "open_node"]


def node_config(url: str, data_dir: Path, names: list[str], *, swarm: str = "gsp", interval: float = 0.2,
                fanout: int = 2, max_reply_bytes: int = 256 * 1024) -> SwarmConfig:
    agents = "".join(f'\n[[agents]]\nname = "{n}"\nkind = "rule-critic"\n' for n in names)
    text = (f'swarm = "{swarm}"\n[gossip]\ninterval = {interval}\nfanout = {fanout}\n'
            f'max_reply_bytes = {max_reply_bytes}\n[nats]\nurl = "{url}"\n{agents}')
    return parse_config(text, source="<test>", data_dir=data_dir)


@contextlib.asynccontextmanager
async def open_node(config: SwarmConfig, name: str, url: str) -> AsyncIterator[GossipNode]:
    """The node of agent `name` on its own bus connection and memory, not started yet;
    stopped, and its memory and bus closed, on exit."""
    async with contextlib.AsyncExitStack() as stack:
        bus = await Bus.connect([url], swarm=config.swarm, name=f"{config.swarm}.{name}")
        stack.push_async_callback(bus.close)
        memory = await Memory.open(config.data_path / name, agent=name)
        stack.push_async_callback(memory.close)
        node = await GossipNode.open(config, name, bus, memory=memory)
        assert node is not None, f"no keys for {name}"
        stack.push_async_callback(node.stop)
        yield node


@contextlib.asynccontextmanager
async def gossip_nodes(config: SwarmConfig, url: str, *, serve: bool = True,
                       names: list[str] | None = None) -> AsyncIterator[dict[str, GossipNode]]:
    """A started node per agent of `config` (keys created on first use)."""
    ensure_keys(config)
    nodes: dict[str, GossipNode] = {}
    async with contextlib.AsyncExitStack() as stack:
        for spec in config.agents:
            if names is None or spec.name in names:
                node = await stack.enter_async_context(open_node(config, spec.name, url))
                nodes[spec.name] = node
                await node.start(serve=serve)
        yield nodes


def keystore(config: SwarmConfig) -> KeyStore:
    return KeyStore(config.data_path / "keys")


def lesson(i: int, *, text: str = "drop_table needs a backup first", features: tuple[str, ...] = ("op:drop_table",),
           topic: str = "order") -> Lesson:
    return Lesson(id=f"l{i}", topic=topic, reason=Reason(code=topic, text=text), features=features)
