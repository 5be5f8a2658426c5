"""The swarm's two streams (the task queue and the stored results): created, updated to the
config's limits and replicas, or waited for, through a cluster's leader elections."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from reverie.protocol import Subjects

from ..errors import ReplicasUnavailable, StreamsMissing, StreamsTooLarge
from ..limits import StreamsConfig
from .retry import PATIENCE, retrying

__all__ = ["DEDUPE_WINDOW", "NO_PEERS", "NO_STORAGE", "ensure_streams", "stream_configs", "wait_streams"]

DEDUPE_WINDOW = 120.0
"""Seconds JetStream remembers a message id: a task published twice within it is queued once."""
NO_STORAGE = 10047
"""JetStream's "insufficient storage resources available": it cannot reserve a stream's max_bytes."""
NO_PEERS = (10005, 10074)
"""JetStream's "no suitable peers for placement" and "replicas > 1 not supported in non-clustered mode"."""


def stream_configs(subjects: Subjects, limits: StreamsConfig, *, max_message_bytes: int) -> list[StreamConfig]:
    """The task queue and the results stream as `limits` configures them."""
    t, r, s = limits.tasks, limits.results, subjects
    return [
        StreamConfig(
            name=s.tasks_stream, subjects=[s.all_tasks], retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE, duplicate_window=DEDUPE_WINDOW, num_replicas=limits.replicas,
            max_msg_size=max_message_bytes, max_bytes=t.max_bytes, max_msgs=t.max_msgs, max_age=t.max_age,
            discard=DiscardPolicy.NEW,  # a full queue refuses new tasks; it never drops queued ones
        ),
        StreamConfig(
            name=s.results_stream, subjects=[s.all_results], retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE, max_msgs_per_subject=1, max_age=r.max_age, max_bytes=r.max_bytes,
            max_msgs=r.max_msgs, discard=DiscardPolicy.OLD, duplicate_window=DEDUPE_WINDOW,
            num_replicas=limits.replicas,
        ),
    ]


async def ensure_streams(js: JetStreamContext, subjects: Subjects, limits: StreamsConfig, *,
                         max_message_bytes: int) -> None:
    """Create or update each stream unless it exists as configured. Raises `StreamsTooLarge`
    when the server cannot reserve their storage, `ReplicasUnavailable` when it has too few
    nodes for their replicas."""
    try:
        for config in stream_configs(subjects, limits, max_message_bytes=max_message_bytes):
            await _ensure(js, config)
    except nats.js.errors.APIError as exc:
        if exc.err_code == NO_STORAGE:
            raise StreamsTooLarge(limits.tasks.max_bytes + limits.results.max_bytes, exc.description or "") from None
        if exc.err_code in NO_PEERS:
            raise ReplicasUnavailable(limits.replicas, exc.description or "") from None
        raise


async def wait_streams(js: JetStreamContext, subjects: Subjects, *, patience: float = PATIENCE) -> None:
    """Return once both streams exist (made by the host the config names); `StreamsMissing`
    after `patience` seconds."""
    deadline = time.monotonic() + patience
    for name in (subjects.tasks_stream, subjects.results_stream):
        await _exists(js, name, deadline, patience)


async def _exists(js: JetStreamContext, name: str, deadline: float, patience: float) -> None:
    while True:
        try:
            await retrying(f"looking up stream {name}", lambda: js.stream_info(name),
                           patience=max(deadline - time.monotonic(), 0.0))
            return
        except nats.js.errors.NotFoundError:
            if time.monotonic() > deadline:
                raise StreamsMissing(name, patience) from None
            await asyncio.sleep(min(0.25, max(deadline - time.monotonic(), 0.0)))


async def _ensure(js: JetStreamContext, config: StreamConfig) -> None:
    """Create or update a stream unless it exists as configured: so a user that may only
    read stream info (an agent or client of an authenticated bus) finds the streams the
    supervisor made, and changes nothing."""
    name = config.name
    assert name is not None
    looking = f"looking up stream {name}"
    try:
        have = (await retrying(looking, lambda: js.stream_info(name))).config
    except nats.js.errors.NotFoundError:
        try:
            await retrying(f"creating stream {name}", lambda: js.add_stream(config=config))
            return
        except nats.js.errors.BadRequestError as exc:
            try:  # another connection made it meanwhile (or our timed-out attempt did), configured otherwise
                have = (await retrying(looking, lambda: js.stream_info(name))).config
            except nats.js.errors.NotFoundError:
                raise exc from None
    if _configured(have, config):
        return
    await retrying(f"updating stream {name}", lambda: js.update_stream(config=config))


def _configured(have: StreamConfig, want: StreamConfig) -> bool:
    """True when every setting `want` makes is what the stream `have` has."""
    return all(getattr(have, f.name) == value for f in dataclasses.fields(want)
               if (value := getattr(want, f.name)) is not None)
