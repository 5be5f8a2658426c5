"""The reverie runtime: the agent API, the bus, the supervisor and the client.

A custom agent imports only from here (and message types from `reverie.protocol`).
"""

from .agent import Agent, Context, NoOptions, handler
from .bus import Bus, Reply, TaskControl
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
from .logs import BurstLog
from .process import pid_alive
from .swarm import EmbeddedNats, Supervisor, find_nats_server

__all__ = [
    "Agent",
    "AgentHost",
    "AgentStartFailed",
    "AgentSpec",
    "Bus",
    "BurstLog",
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
    "Reply",
    "ReverieError",
    "Supervisor",
    "Swarm",
    "SwarmConfig",
    "SwarmNotRunning",
    "SwarmStatus",
    "TaskControl",
    "TaskTimeout",
    "TaskTooLarge",
    "connect",
    "find_nats_server",
    "handler",
    "load_config",
    "parse_config",
    "pid_alive",
    "serve_agent",
]
