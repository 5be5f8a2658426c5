"""Running a swarm: the supervisor, the embedded nats-server, its permissions, TLS and state file."""

from .embedded import EmbeddedNats, find_nats_server
from .supervisor import Supervisor

__all__ = ["EmbeddedNats", "Supervisor", "find_nats_server"]
