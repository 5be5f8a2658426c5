"""The reverie runtime: the agent API, the bus, the supervisor and the client.

A custom agent imports only from here (and message types from `reverie.protocol`).
"""

from .agent import Agent, Context, NoOptions, handler
from .bus import Answers, Bus, Reply, TaskControl
from .client import Swarm, SwarmStatus, connect
from .config import AgentSpec, NatsConfig, SwarmConfig, load_config, parse_config
from .errors import (
    AgentsNotReady,
    AgentStartFailed,
    ConfigError,
    DreamFailed,
    HandlerSignatureError,
    InvalidTaskId,
    InvalidTaskKind,
    NatsServerError,
    NatsServerNotFound,
    NatsUnreachable,
    NestingTooDeep,
    NoMemory,
    NoSuchAgent,
    NoSuchMemory,
    NotAuthorized,
    OptionError,
    OversizedMessage,
    ProtocolError,
    QueueFull,
    ReverieError,
    StreamsTooLarge,
    SwarmAlreadyRunning,
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
    "AgentSpec",
    "AgentStartFailed",
    "AgentsNotReady",
    "Answers",
    "BurstLog",
    "Bus",
    "ConfigError",
    "Context",
    "DreamFailed",
    "EmbeddedNats",
    "HandlerSignatureError",
    "InvalidTaskId",
    "InvalidTaskKind",
    "NatsConfig",
    "NatsServerError",
    "NatsServerNotFound",
    "NatsUnreachable",
    "NestingTooDeep",
    "NoMemory",
    "NoOptions",
    "NoSuchAgent",
    "NoSuchMemory",
    "NotAuthorized",
    "OptionError",
    "OversizedMessage",
    "ProtocolError",
    "QueueFull",
    "Reply",
    "ReverieError",
    "StreamsTooLarge",
    "Supervisor",
    "Swarm",
    "SwarmAlreadyRunning",
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
