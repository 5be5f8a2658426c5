"""Who may connect to the bus and where each may publish: one NKey user per agent, plus
`_client` (`reverie submit/status/task`, `reverie.runtime.connect`) and `_admin` (the
supervisor). Seeds live in 0600 files `<data_dir>/keys/nats/<user>.nk`; the embedded server
gets the matching `authorization { users = [...] }` block, generated from each agent's role
and handlers. See README, "Securing the bus"."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nkeys

from reverie.protocol import Subjects

from .config import AgentSpec, SwarmConfig
from .errors import ConfigError
from .keyfiles import KeyFileMissing, create_private, fsync_dir, read_private

__all__ = ["ADMIN", "CLIENT", "authorization_block", "config_path", "ensure_users", "permissions",
           "public_key", "read_seed", "seed_dir", "seed_for", "seed_path", "users"]

CLIENT = "_client"
"""The user of every client connection: submit tasks, read results, status, pause/resume."""
ADMIN = "_admin"
"""The supervisor's user: creates the streams and the task-control bucket; may do anything."""
SEED_SIZE = 58
"""Bytes of an encoded NKey seed (`SU…`)."""

Permissions = dict[str, Any]


def config_path(config: SwarmConfig, value: str) -> Path:
    """A path from the config, relative to the config file's folder (like `data_dir`)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    source = Path(config.source)
    base = source.resolve().parent if source.exists() else Path.cwd()
    return base / path


def seed_dir(config: SwarmConfig) -> Path:
    """`nats.nkey_seed_dir` if set, else `<data_dir>/keys/nats`."""
    if config.nats.nkey_seed_dir:
        return config_path(config, config.nats.nkey_seed_dir)
    return config.data_path / "keys" / "nats"


def seed_path(config: SwarmConfig, user: str) -> Path:
    return seed_dir(config) / f"{user}.nk"


def users(config: SwarmConfig) -> list[str]:
    """Every NATS user of the swarm: its agents, then `_client` and `_admin`."""
    names = [spec.name for spec in config.agents]
    for i, name in enumerate(names):
        if name in (CLIENT, ADMIN):
            raise ConfigError(config.source, f"$.agents[{i}].name",
                              f"{name!r} is reserved for the swarm's own NATS users")
    return [*names, CLIENT, ADMIN]


def read_seed(path: Path) -> bytes:
    """The NKey seed in `path` (a 0600 file; see `keyfiles.read_private`)."""
    return read_private(path, SEED_SIZE)


def public_key(seed: bytes) -> str:
    kp = nkeys.from_seed(bytearray(seed))
    try:
        return str(kp.public_key.decode())
    finally:
        kp.wipe()


def ensure_users(config: SwarmConfig) -> dict[str, str]:
    """Create the seed of every user that has none (idempotent); return their public keys."""
    folder = seed_dir(config)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys: dict[str, str] = {}
    created = False
    for user in users(config):
        path = folder / f"{user}.nk"
        try:
            seed = read_seed(path)
        except KeyFileMissing:
            seed = bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
            create_private(path, seed)
            created = True
        keys[user] = public_key(seed)
    if created:
        fsync_dir(folder)
    return keys


def seed_for(config: SwarmConfig, user: str) -> Path | None:
    """The seed file a connection of `user` authenticates with, or None to connect without:
    for the embedded server when `nats.auth` is on; for an existing deployment when
    `nats.nkey_seed_dir` is set."""
    nats = config.nats
    if nats.embedded and not nats.auth:
        return None
    if not nats.embedded and not nats.nkey_seed_dir:
        return None
    return seed_path(config, user)


# ---------------------------------------------------------------------- permissions


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _rule(publish: Iterable[str], subscribe: Iterable[str], *, responses: bool = False) -> Permissions:
    rule: Permissions = {"publish": {"allow": _unique(publish)}, "subscribe": {"allow": _unique(subscribe)}}
    if responses:
        # may answer a plain request it received (once), as NATS request-reply peers do; replies
        # that must name their sender (verdicts, status) go to `<reply>.<name>` instead
        rule["allow_responses"] = {"max": 1}
    return rule


def _own(s: Subjects, user: str) -> list[str]:
    """A user's inboxes: JetStream API replies, pull deliveries, fan-out replies."""
    return [f"{s.inbox(user)}.>", f"{s.replies(user)}.>"]


def _stream_info(*streams: str) -> list[str]:
    return [f"$JS.API.STREAM.INFO.{name}" for name in streams]


def _kv(bucket: str) -> list[str]:
    """Read and write one JetStream key-value bucket (not create or delete it)."""
    stream = f"KV_{bucket}"
    return [f"$KV.{bucket}.>", *_stream_info(stream), f"$JS.API.DIRECT.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}.>", f"$JS.API.STREAM.MSG.GET.{stream}"]


def _agent(s: Subjects, spec: AgentSpec) -> Permissions:
    from .registry import resolve_agent_class  # late: the registry imports the agent API

    name = spec.name
    cls = resolve_agent_class(spec.kind)
    handlers = cls.handlers(spec.subjects)
    publish = [s.heartbeat(name), s.agent_event(name), s.gossip("*"), f"{s.reply_root}*.*.*.{name}"]
    subscribe = [*_own(s, name), s.rel("ctl.>"), s.all_events, s.gossip(name)]
    subscribe += [s.rel(h.spec.pattern) for h in handlers if not h.durable]
    if any(h.durable for h in handlers):
        api, consumer = "$JS.API.CONSUMER", f"{s.tasks_stream}.{name}"  # its own durable only
        publish += [f"{api}.INFO.{consumer}", f"{api}.CREATE.{consumer}", f"{api}.CREATE.{consumer}.>",
                    f"{api}.DURABLE.CREATE.{consumer}", f"{api}.MSG.NEXT.{consumer}", f"$JS.ACK.{consumer}.>",
                    *_stream_info(s.tasks_stream, s.results_stream), s.all_results,
                    f"$JS.API.STREAM.MSG.GET.{s.results_stream}", s.rel("events.error")]
    if cls.role == "dreamer":
        publish += [s.rel("dream.>"), s.rel("events.task.>"), *_kv(s.control_bucket)]
    return _rule(publish, subscribe, responses=True)


def _client(s: Subjects) -> Permissions:
    publish = [s.all_tasks, s.status, s.rel("ctl.task.>"),
               *_stream_info(s.tasks_stream, s.results_stream),
               f"$JS.API.STREAM.MSG.GET.{s.results_stream}", *_kv(s.control_bucket)]
    subscribe = [*_own(s, CLIENT), s.all_results, s.all_events, s.rel("ctl.heartbeat.>")]
    return _rule(publish, subscribe)


def permissions(config: SwarmConfig) -> dict[str, Permissions]:
    """Each user's publish and subscribe allow-lists (everything else is denied):

    - every agent: its heartbeat, its lifecycle events, gossip requests, replies that name it
      (`rv.<swarm>.reply.*.*.*.<name>`); it reads control, events, its gossip subject, its
      handlers' subjects and its own inboxes;
    - agents with `task.*` handlers: their own durable consumer of the task stream, acks,
      storing and reading results, `events.error`;
    - dreamers: candidates (`dream.>`), `events.task.>`, the task-control bucket;
    - `_client`: tasks, status and task queries, results, the task-control bucket;
    - `_admin`: everything.
    """
    s = Subjects(config.swarm)
    users(config)  # reserved names are refused
    perms = {spec.name: _agent(s, spec) for spec in config.agents}
    perms[CLIENT] = _client(s)
    perms[ADMIN] = _rule([">"], [">"])
    return perms


def authorization_block(config: SwarmConfig, public_keys: Mapping[str, str]) -> dict[str, Any]:
    """nats-server's `authorization` block for the swarm (JSON, which nats-server reads as its
    config syntax): one NKey user per entry of `public_keys` (see `ensure_users`)."""
    perms = permissions(config)
    return {"users": [{"nkey": public_keys[user], "permissions": perms[user]} for user in users(config)]}
