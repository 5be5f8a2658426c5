"""The reverie runtime: the agent API, the bus, the supervisor and the client.

A custom agent imports only from here (and message types from `reverie.protocol`).
"""

from .agent import Agent, Context, NoOptions, handler
from .bus import Bus
from .client import Swarm, SwarmStatus, connect
from .config import AgentSpec, NatsConfig, SwarmConfig, load_config, parse_config
from .errors import (
    AgentStartFailed,
    ConfigError,
    HandlerSignatureError,
    InvalidTaskId,
    NatsServerError,
    NatsServerNotFound,
    NatsUnreachable,
    NestingTooDeep,
    NotAuthorized,
    OversizedMessage,
    ProtocolError,
    QueueFull,
    ReverieError,
    SwarmNotRunning,
    TaskTimeout,
    TaskTooLarge,
)
from .host import AgentHost, serve_agent
from .swarm import EmbeddedNats, Supervisor, find_nats_server

__all__ = [
    "Agent",
    "AgentHost",
    "AgentStartFailed",
    "AgentSpec",
    "Bus",
    "ConfigError",
    "Context",
    "EmbeddedNats",
    "HandlerSignatureError",
    "InvalidTaskId",
    "NatsConfig",
    "NatsServerError",
    "NatsServerNotFound",
    "NatsUnreachable",
    "NestingTooDeep",
    "NoOptions",
    "NotAuthorized",
    "OversizedMessage",
    "ProtocolError",
    "QueueFull",
    "ReverieError",
    "Supervisor",
    "Swarm",
    "SwarmConfig",
    "SwarmNotRunning",
    "SwarmStatus",
    "TaskTimeout",
    "TaskTooLarge",
    "connect",
    "find_nats_server",
    "handler",
    "load_config",
    "parse_config",
    "serve_agent",
]
