"""Agent hosting: one replica of an agent class on a bus, in this event loop or as a worker process."""

from .host import AgentHost
from .serving import serve_agent

__all__ = ["AgentHost", "serve_agent"]
