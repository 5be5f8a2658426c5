"""The bus: a connected NATS client for one swarm, the credentials a process of the swarm
connects with, and the JetStream task-control bucket."""

from .answers import Answers
from .bus import Bus, Reply
from .credentials import connect_bus
from .taskctl import TaskControl

__all__ = ["Answers", "Bus", "Reply", "TaskControl", "connect_bus"]
