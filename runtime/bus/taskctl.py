"""Pause, resume and cancel of tasks, through a JetStream KV bucket (`RV_<SWARM>_TASKCTL`).

`pause.<id>` is the request (anyone may set it); a dreamer checks it after each round that
accepted nothing, and when set it checkpoints, parks the task body under `parked.<id>` and
lets the queue message go. `resume` clears the request and, if the task was parked, queues
it again: the dreamer that takes it resumes from its checkpoint at the next round. `cancel.<id>`
asks for the task to end `cancelled`, checked when a dreamer takes the task and after each round. The bucket
lives in JetStream, so pause state survives restarts of agents and of the server.
"""

from __future__ import annotations

import time

import nats.errors
import nats.js.errors
from nats.js.api import StorageType
from nats.js.kv import KeyValue

from reverie.protocol import Codec, Task, check_task_id, encode

from .bus import Bus
from .retry import retrying

__all__ = ["TaskControl"]


class TaskControl:
    """The task-control bucket of one swarm; `await TaskControl.open(bus)` finds or creates it."""

    def __init__(self, bus: Bus, kv: KeyValue) -> None:
        self.bus = bus
        self.kv = kv
        self._codec: Codec[Task] = Codec(Task, max_bytes=bus.max_message_bytes)

    @classmethod
    async def open(cls, bus: Bus, *, replicas: int = 1) -> TaskControl:
        """Bind the bucket, or create it with `replicas` copies (`[streams] replicas`)."""
        name = bus.subjects.control_bucket
        try:
            kv = await retrying(f"looking up bucket {name}", lambda: bus.js.key_value(name))
        except nats.js.errors.BucketNotFoundError:
            kv = await retrying(f"creating bucket {name}", lambda: bus.js.create_key_value(
                bucket=name, history=1, storage=StorageType.FILE, replicas=replicas))
        return cls(bus, kv)

    @staticmethod
    def _key(prefix: str, task_id: str) -> str:
        """`<prefix>.<task_id>`; raises `InvalidTaskId` (a `*` or `>` would address other tasks' keys)."""
        check_task_id(task_id)
        return f"{prefix}.{task_id}"

    async def _exists(self, key: str) -> bool:
        try:
            entry = await self.kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return False
        return entry.value is not None and entry.operation is None

    async def pause(self, task_id: str) -> None:
        key = self._key("pause", task_id)
        await retrying(f"asking to pause {task_id}", lambda: self.kv.put(key, b"1"))

    async def pause_requested(self, task_id: str) -> bool:
        """True if a pause was requested. During a server outage this answers False: the
        dreamer keeps going and sees the request after the next round instead."""
        key = self._key("pause", task_id)
        try:
            return await self._exists(key)
        except (TimeoutError, nats.errors.Error):
            return False

    async def park(self, task: Task) -> None:
        key, data = self._key("parked", task.id), encode(task)
        await retrying(f"parking {task.id}", lambda: self.kv.put(key, data))

    async def parked(self, task_id: str) -> Task | None:
        key = self._key("parked", task_id)
        try:
            entry = await retrying(f"looking up parked {task_id}", lambda: self.kv.get(key))
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None or entry.operation is not None:
            return None
        return self._codec.decode(entry.value)

    async def cancel(self, task_id: str) -> bool:
        """Ask for the task to end `cancelled`: the dreamer that holds it stops after its current
        round, one that takes it from the queue stops before dreaming. A parked task is queued again
        so that a dreamer ends it. Returns True if it was parked."""
        key = self._key("cancel", task_id)
        await retrying(f"asking to cancel {task_id}", lambda: self.kv.put(key, b"1"))
        return await self.resume(task_id)

    async def cancel_requested(self, task_id: str) -> bool:
        """True if a cancel was requested (False during a server outage, as `pause_requested`)."""
        try:
            return await self._exists(self._key("cancel", task_id))
        except (TimeoutError, nats.errors.Error):
            return False

    async def forget_cancel(self, task_id: str) -> None:
        """Drop a cancel request once the task's cancelled result is stored (best effort)."""
        try:
            await self.kv.delete(self._key("cancel", task_id))
        except (TimeoutError, nats.errors.Error):
            pass

    async def resume(self, task_id: str) -> bool:
        """Clear the pause request; re-queue the task if a dreamer had parked it. Returns
        True if the task was parked (and is queued again)."""
        pause, parked = self._key("pause", task_id), self._key("parked", task_id)
        await retrying(f"resuming {task_id}", lambda: self.kv.delete(pause))
        task = await self.parked(task_id)
        if task is None:
            return False
        await self.bus.submit(task, msg_id=f"{task.id}.resume.{time.time_ns()}")
        await retrying(f"resuming {task_id}", lambda: self.kv.delete(parked))
        return True
