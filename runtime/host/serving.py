"""Serve one agent replica inside the current event loop (the worker process, tests, benches)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ..bus.credentials import connect_bus
from ..config import SwarmConfig
from ..kinds import Roster
from .host import AgentHost

__all__ = ["serve_agent"]


@contextlib.asynccontextmanager
async def serve_agent(config: SwarmConfig, name: str, *, servers: list[str],
                      replica: int = 0, randomize: bool = True) -> AsyncIterator[AgentHost]:
    """Run one replica of agent `name` in this event loop: subscribed and ready on entry
    (`randomize=False`: connected to the first of `servers` that answers, in order)."""
    kind = Roster.of(config)[config.agent(name).name]
    bus = await connect_bus(config, name, servers, name=f"{config.swarm}.{name}.{replica}", randomize=randomize)
    async with bus, AgentHost(kind.cls, bus=bus, config=config, spec=kind.spec, replica=replica) as host:
        yield host
