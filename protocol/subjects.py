"""Every subject and stream name, built from the swarm name. See DESIGN.md, "Subjects"."""

from __future__ import annotations

import re

from .errors import InvalidTaskId

__all__ = ["MAX_TASK_ID", "Subjects", "check_task_id", "valid_swarm_name", "valid_token"]

_SWARM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")

MAX_TASK_ID = 128
"""The longest task id: ids name subjects, KV keys and memory paths, and travel in every message."""


def valid_swarm_name(name: str) -> bool:
    return bool(_SWARM_NAME.fullmatch(name))


def valid_token(token: str) -> bool:
    """True when `token` can stand as one subject token (no dots, wildcards, spaces or newlines)."""
    return bool(_TOKEN.fullmatch(token))


def check_task_id(task_id: str) -> None:
    """Raise `InvalidTaskId` unless `task_id` is 1-128 letters, digits, '-' or '_'. The id
    becomes a subject token (`result.<id>`): a dot, `*` or `>` in it would address other
    tasks' subjects."""
    if len(task_id) > MAX_TASK_ID or not valid_token(task_id):
        raise InvalidTaskId(task_id, MAX_TASK_ID)


class Subjects:
    """Subjects of one swarm: `rv.<swarm>.…`."""

    def __init__(self, swarm: str) -> None:
        if not valid_swarm_name(swarm):
            raise ValueError(
                f"swarm name {swarm!r} must be 1-64 chars of lowercase letters, digits, '-' or '_'"
            )
        self.swarm = swarm
        self.prefix = f"rv.{swarm}"
        upper = swarm.upper().replace("-", "_")
        self.tasks_stream = f"RV_{upper}_TASKS"
        self.results_stream = f"RV_{upper}_RESULTS"

    def rel(self, pattern: str) -> str:
        """Turn an agent-relative pattern (`task.plan`, `dream.*.cand`) into a full subject."""
        return f"{self.prefix}.{pattern}"

    def task(self, kind: str) -> str:
        return f"{self.prefix}.task.{kind}"

    @property
    def all_tasks(self) -> str:
        return f"{self.prefix}.task.>"

    def candidate(self, task_id: str) -> str:
        return f"{self.prefix}.dream.{task_id}.cand"

    @property
    def all_candidates(self) -> str:
        return f"{self.prefix}.dream.*.cand"

    def result(self, task_id: str) -> str:
        return f"{self.prefix}.result.{task_id}"

    @property
    def all_results(self) -> str:
        return f"{self.prefix}.result.>"

    def gossip(self, agent_id: str) -> str:
        return f"{self.prefix}.gossip.{agent_id}"

    @property
    def status(self) -> str:
        return f"{self.prefix}.ctl.status"

    @property
    def task_show(self) -> str:
        return f"{self.prefix}.ctl.task.show"

    @property
    def control_bucket(self) -> str:
        """The JetStream KV bucket that holds pause flags and parked tasks."""
        return self.tasks_stream.replace("_TASKS", "_TASKCTL")

    def heartbeat(self, agent: str) -> str:
        return f"{self.prefix}.ctl.heartbeat.{agent}"

    def agent_event(self, agent: str) -> str:
        return f"{self.prefix}.events.agent.{agent}"

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.events.>"

    def inbox(self, user: str) -> str:
        """The inbox prefix of NATS user `user`'s connections (plain requests, JetStream API
        replies, pull deliveries): only that user may subscribe under it."""
        return f"{self.prefix}.inbox.{user}"

    def replies(self, user: str) -> str:
        """The root of `user`'s fan-out request inboxes. A responder answers a request whose
        reply subject lies under `rv.<swarm>.reply.` on `<reply>.<its own name>`, and may
        publish only there, so each reply names (and the server vouches for) its sender."""
        return f"{self.prefix}.reply.{user}"

    @property
    def reply_root(self) -> str:
        return f"{self.prefix}.reply."
