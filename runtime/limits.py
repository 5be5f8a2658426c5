"""How much the durable streams may hold: the `[streams]` table of a deploy config.

Without limits any `_client` can fill the disk. A full task queue refuses new tasks (a clear
`QueueFull` at submit) rather than dropping queued ones; the results stream drops its oldest
results first (each is also in its dreamer's memory).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["ResultLimits", "StreamLimits", "StreamsConfig"]

DAY = 24 * 3600.0


MiB = 1 << 20


class StreamLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 256 * MiB
    """JetStream reserves this much file storage for the stream when it is created."""
    max_msgs: Annotated[int, msgspec.Meta(ge=1)] = 1_000_000
    max_age: Annotated[float, msgspec.Meta(gt=0)] = 7 * DAY
    """Seconds a message is kept."""


class ResultLimits(StreamLimits, frozen=True, forbid_unknown_fields=True):
    max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 512 * MiB


class StreamsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    """Copies of each stream (and of the task-control bucket) on a NATS cluster's nodes: 3
    survives the loss of a node. One server keeps 1."""
    creator: str | None = None
    """The host (`reverie up --host-name`, default the machine's hostname) whose supervisor
    creates and updates the streams; the others wait for them. None: every supervisor does."""
    tasks: StreamLimits = StreamLimits()
    """The task queue: full, it refuses new tasks."""
    results: ResultLimits = ResultLimits()
    """Stored results: full, the oldest go first."""
