"""Where each NATS user of the swarm may publish and subscribe: generated from each agent's
role and handlers (the `Roster`), written into the embedded server's `authorization` block.
See README, "Securing the bus"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reverie.protocol import Subjects

from ..bus.credentials import ADMIN, CLIENT, users
from ..config import SwarmConfig
from ..kinds import Kind, Roster

__all__ = ["Permissions", "authorization_block", "permissions"]

Permissions = dict[str, Any]


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


def _agent(s: Subjects, kind: Kind) -> Permissions:
    name, handlers = kind.spec.name, kind.handlers
    publish = [s.heartbeat(name), s.agent_event(name), s.gossip("*"), f"{s.reply_root}*.*.*.{name}"]
    subscribe = [*_own(s, name), s.rel("ctl.>"), s.all_events, s.gossip(name)]
    subscribe += [s.rel(h.spec.pattern) for h in handlers if not h.durable]
    if any(h.durable for h in handlers):
        api, consumer = "$JS.API.CONSUMER", f"{s.tasks_stream}.{name}"  # its own durable only
        publish += [f"{api}.INFO.{consumer}", f"{api}.CREATE.{consumer}", f"{api}.CREATE.{consumer}.>",
                    f"{api}.DURABLE.CREATE.{consumer}", f"{api}.MSG.NEXT.{consumer}", f"$JS.ACK.{consumer}.>",
                    *_stream_info(s.tasks_stream, s.results_stream), s.all_results,
                    f"$JS.API.STREAM.MSG.GET.{s.results_stream}", s.rel("events.error")]
    if kind.role == "dreamer":
        publish += [s.rel("dream.>"), s.rel("events.task.>"), *_kv(s.control_bucket)]
    return _rule(publish, subscribe, responses=True)


def _client(s: Subjects) -> Permissions:
    publish = [s.all_tasks, s.status, s.rel("ctl.task.>"),
               *_stream_info(s.tasks_stream, s.results_stream),
               f"$JS.API.STREAM.MSG.GET.{s.results_stream}", f"$JS.API.STREAM.MSG.GET.{s.tasks_stream}",
               *_kv(s.control_bucket)]
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
    perms = {name: _agent(s, kind) for name, kind in Roster.of(config).items()}
    perms[CLIENT] = _client(s)
    perms[ADMIN] = _rule([">"], [">"])
    return perms


def authorization_block(config: SwarmConfig, public_keys: Mapping[str, str]) -> dict[str, Any]:
    """nats-server's `authorization` block for the swarm (JSON, which nats-server reads as its
    config syntax): one NKey user per entry of `public_keys` (see `ensure_users`)."""
    perms = permissions(config)
    return {"users": [{"nkey": public_keys[user], "permissions": perms[user]} for user in users(config)]}
