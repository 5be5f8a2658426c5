"""Which of a swarm's agent replicas run on this host (`reverie up --only`), and whether this
host's supervisor creates the swarm's streams (`[streams] creator`) or waits for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import SwarmConfig
from ..errors import NoSuchAgent, OptionError
from ..hostname import HOST_ENV, host_name

__all__ = ["HOST_ENV", "Placement", "host_name"]

@dataclass(frozen=True)
class Placement:
    """The replicas this host runs: every one (`only` None), or those `--only` names."""

    host: str
    only: frozenset[tuple[str, int]] | None = None

    @classmethod
    def parse(cls, config: SwarmConfig, only: str | None, *, host: str | None = None) -> Placement:
        """`only` is `NAME[,NAME...]`: an agent (all its replicas) or `NAME.I` (its replica I).
        Raises `NoSuchAgent` for a name the config does not have, `OptionError` for a replica
        it does not have or an empty list."""
        if only is None:
            return cls(host_name(host))
        chosen: set[tuple[str, int]] = set()
        names = [n.strip() for n in only.split(",") if n.strip()]
        if not names:
            raise OptionError("--only", "names no agent")
        agents = {spec.name: spec for spec in config.agents}
        for name in names:
            agent, replica = _split(name, agents)
            spec = agents.get(agent)
            if spec is None:
                raise NoSuchAgent(config.source, agent, [s.name for s in config.agents])
            if replica is None:
                chosen.update((agent, i) for i in range(spec.replicas))
            elif replica >= spec.replicas:
                raise OptionError("--only", f"{agent} has {spec.replicas} replica(s): {name} is not one of them")
            else:
                chosen.add((agent, replica))
        return cls(host_name(host), frozenset(chosen))

    def runs(self, agent: str, replica: int) -> bool:
        return self.only is None or (agent, replica) in self.only

    def creates_streams(self, config: SwarmConfig) -> bool:
        """This host makes (and updates) the streams; any other waits until they exist."""
        return config.streams.creator in (None, self.host)


def _split(name: str, agents: Mapping[str, object]) -> tuple[str, int | None]:
    """`NAME` or `NAME.I` (an agent whose own name has a dot and a number wins)."""
    head, dot, tail = name.rpartition(".")
    if dot and tail.isdigit() and name not in agents:
        return head, int(tail)
    return name, None
