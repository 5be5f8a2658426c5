"""`/metrics` for the whole swarm, served by the supervisor from what it hears on the bus."""

from __future__ import annotations

import asyncio
from wsgiref.simple_server import WSGIServer

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import start_http_server

from reverie.protocol import AgentStatus, Codec, ProtocolError, Result

from ..bus.bus import Bus
from .collect import SwarmMetrics

__all__ = ["MetricsServer"]


class MetricsServer:
    """Listens to the swarm's results and heartbeats and serves them to Prometheus.
    `async with MetricsServer(bus, port) as server:`; `server.port` is the bound port."""

    def __init__(self, bus: Bus, port: int, host: str = "127.0.0.1") -> None:
        self.bus = bus
        self.host = host
        self.port = port
        self.metrics = SwarmMetrics()
        self._results: Codec[Result] = Codec(Result, max_bytes=bus.max_message_bytes, max_depth=None)
        self._statuses: Codec[AgentStatus] = Codec(AgentStatus, max_bytes=bus.max_message_bytes)
        self._subs: list[Subscription] = []
        self._http: WSGIServer | None = None

    async def __aenter__(self) -> MetricsServer:
        s = self.bus.subjects
        self._subs = [await self.bus.nc.subscribe(s.all_results, cb=self._on_result),
                      await self.bus.nc.subscribe(s.rel("ctl.heartbeat.>"), cb=self._on_heartbeat)]
        http, _ = await asyncio.to_thread(start_http_server, self.port, self.host, self.metrics.registry)
        self._http, self.port = http, http.server_port
        return self

    async def __aexit__(self, *exc: object) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        if self._http is not None:
            await asyncio.to_thread(self._http.shutdown)
            self._http.server_close()

    async def _on_result(self, msg: Msg) -> None:
        try:
            self.metrics.observe(self._results.decode(msg.data))
        except ProtocolError:
            return  # not a result: the bus's guards count it where it was sent

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            self.metrics.heartbeat(self._statuses.decode(msg.data))
        except ProtocolError:
            return
