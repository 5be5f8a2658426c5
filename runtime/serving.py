"""Serve one agent replica inside the current event loop (the worker process, tests, benches)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from .bus import Bus
from .config import SwarmConfig
from .host import AgentHost
from .natsauth import seed_for
from .natstls import client_context
from .registry import resolve_agent_class


@contextlib.asynccontextmanager
async def serve_agent(config: SwarmConfig, name: str, *, servers: list[str],
                      replica: int = 0) -> AsyncIterator[AgentHost]:
    """Run one replica of agent `name` in this event loop: subscribed and ready on entry."""
    spec = config.agent(name)
    cls = resolve_agent_class(spec.kind)
    bus = await Bus.connect(servers, swarm=config.swarm, name=f"{config.swarm}.{name}.{replica}",
                            user=name, nkeys_seed=seed_for(config, name), tls=client_context(config, servers),
                            max_message_bytes=config.max_message_bytes,
                            connect_timeout=config.nats.connect_timeout)
    async with bus, AgentHost(cls, bus=bus, config=config, spec=spec, replica=replica) as host:
        yield host
