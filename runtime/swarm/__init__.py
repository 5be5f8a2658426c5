"""Running a swarm: the supervisor, the embedded nats-server, its permissions, TLS and state file."""

from .embedded import EmbeddedNats, find_nats_server
from .placement import Placement, host_name
from .supervisor import Supervisor

__all__ = ["EmbeddedNats", "Placement", "Supervisor", "find_nats_server", "host_name"]
