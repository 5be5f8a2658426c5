"""The bus: a connected NATS client for one swarm, the credentials a process of the swarm
connects with, and the JetStream task-control bucket."""

from .bus import Bus, Reply
from .credentials import connect_bus
from .taskctl import TaskControl

__all__ = ["Bus", "Reply", "TaskControl", "connect_bus"]
