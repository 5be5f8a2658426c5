"""Consolidation dreams: read an agent's memory, write a reorganised one.

Modelled on the Dreams API of Claude Managed Agents. A dream merges duplicate lessons (the
same finding learned on many tasks becomes one lesson with the summed weight and the union of
features), drops or collapses dead branches, and writes one summary per lesson topic.

- `new_version` (default): the input store is only read; the output is a new store under
  `<store>/versions/<dream id>/` holding the latest version of every live memory, the merged
  lessons, summaries and the dream's record. Non-destructive.
- `in_place`: the same changes are committed to the input store in one batch (duplicates are
  invalidated, not deleted, so history keeps them), then dead branches are collapsed. Only one
  in-place dream per store runs at a time; a second is refused with `MemoryLocked`.

Every dream keeps a record at `/dreams/<id>` (in the store it writes), one version per status
change: pending -> running -> completed / failed / canceled, with what it read, what it
changed and its usage. The offline consolidator is deterministic.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import msgspec

from reverie.protocol import new_id

from .errors import MemoryLocked
from .model import EdgeKind, Lesson
from .store import MemoryStore

__all__ = [
    "MAX_INSTRUCTIONS",
    "Consolidator",
    "DreamChanges",
    "DreamMode",
    "DreamRecord",
    "DreamStatus",
    "DreamUsage",
    "OfflineConsolidator",
    "Plan",
    "dream",
    "in_place_lock",
]

MAX_INSTRUCTIONS = 4096


class DreamStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class DreamMode(enum.StrEnum):
    NEW_VERSION = "new_version"
    IN_PLACE = "in_place"


class DreamUsage(msgspec.Struct, kw_only=True):
    seconds: float = 0.0
    memories_read: int = 0
    lessons_read: int = 0
    bytes_read: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    """What the model calls cost (None: no model planned this dream, or it has no price)."""


class DreamChanges(msgspec.Struct, kw_only=True):
    lessons_merged: int = 0
    """Duplicate lessons folded into merged ones."""
    merged_lessons_written: int = 0
    branches_dropped: int = 0
    """Dead branches left out of a new version, or collapsed in place."""
    summaries_written: int = 0
    memories_written: int = 0


class DreamRecord(msgspec.Struct, kw_only=True):
    id: str
    status: DreamStatus
    mode: DreamMode
    input: str
    output: str
    instructions: str = ""
    consolidator: str = "offline"
    started_at: float = 0.0
    finished_at: float = 0.0
    usage: DreamUsage = msgspec.field(default_factory=DreamUsage)
    changes: DreamChanges = msgspec.field(default_factory=DreamChanges)
    error: str = ""


class Plan(msgspec.Struct, kw_only=True):
    """What a consolidator decided: merged lessons (each replacing some originals) and summaries."""

    merged: list[tuple[Lesson, list[str]]]  # (merged lesson, paths of the lessons it replaces)
    summaries: dict[str, str]  # topic -> text


class Consolidator(Protocol):
    name: str

    def plan(self, lessons: Sequence[Lesson], instructions: str, usage: DreamUsage) -> Plan: ...


class OfflineConsolidator:
    """Deterministic: lessons with the same topic, code, operations and limit are duplicates."""

    name = "offline"

    def plan(self, lessons: Sequence[Lesson], instructions: str, usage: DreamUsage) -> Plan:
        groups: dict[tuple[object, ...], list[Lesson]] = {}
        for lesson in lessons:
            r = lesson.reason
            groups.setdefault((lesson.topic, r.code, r.ops, r.limit), []).append(lesson)
        merged: list[tuple[Lesson, list[str]]] = []
        for key, group in sorted(groups.items(), key=lambda kv: repr(kv[0])):
            if len(group) < 2:
                continue
            group.sort(key=lambda x: (x.created_at, x.id))
            lid = "m" + hashlib.sha256(repr(key).encode()).hexdigest()[:15]
            features = tuple(sorted({f for x in group for f in x.features}))
            merged.append((Lesson(id=lid, topic=group[0].topic, reason=group[0].reason, features=features,
                                  author="consolidation", created_at=group[-1].created_at,
                                  weight=sum(x.weight for x in group)),
                           [x.path for x in group if x.id != lid]))
        summaries: dict[str, str] = {}
        replaced = {p for _, paths in merged for p in paths}
        live = [m for m, _ in merged] + [x for x in lessons if x.path not in replaced]
        for topic in sorted({x.topic for x in live}):
            items = sorted((x for x in live if x.topic == topic), key=lambda x: (-x.weight, x.reason.text))
            summaries[topic] = "\n".join(f"{x.weight:g} x {x.reason.text}" for x in items)
        return Plan(merged=merged, summaries=summaries)


@contextlib.contextmanager
def in_place_lock(directory: Path) -> Iterator[None]:
    """Exclusive, non-blocking: a second in-place dream on the same store is refused."""
    fd = os.open(directory / "dream.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MemoryLocked(f"an in-place dream is already running on {directory}") from None
        yield
    finally:
        os.close(fd)


def dream(store: MemoryStore, *, in_place: bool = False, instructions: str = "",
          consolidator: Consolidator | None = None, keep_dead: int = 0,
          should_cancel: Callable[[], bool] = lambda: False) -> DreamRecord:
    """Run one consolidation dream over `store` (synchronously; agents call it on their memory
    thread). Returns the final record; a failure is recorded, then re-raised."""
    if len(instructions) > MAX_INSTRUCTIONS:
        raise ValueError(f"dream instructions are limited to {MAX_INSTRUCTIONS} characters")
    consolidator = consolidator or OfflineConsolidator()
    directory = Path(store.path)
    dream_id = new_id()
    mode = DreamMode.IN_PLACE if in_place else DreamMode.NEW_VERSION
    output_dir = directory if in_place else directory / "versions" / dream_id
    record = DreamRecord(id=dream_id, status=DreamStatus.PENDING, mode=mode, input=str(directory),
                         output=str(output_dir), instructions=instructions, consolidator=consolidator.name,
                         started_at=time.time())
    with contextlib.ExitStack() as stack:
        if in_place:
            stack.enter_context(in_place_lock(directory))
            out = store
        else:
            out = stack.enter_context(MemoryStore.open(output_dir, agent=store.agent))
        _save(out, record)
        record.status = DreamStatus.RUNNING
        _save(out, record)
        began = time.monotonic()
        try:
            _consolidate(store, out, record, consolidator, keep_dead, should_cancel)
        except BaseException as exc:
            record.status = DreamStatus.FAILED
            record.error = f"{type(exc).__name__}: {exc}"
            record.usage.seconds = time.monotonic() - began
            record.finished_at = time.time()
            _save(out, record)
            raise
        record.usage.seconds = time.monotonic() - began
        record.finished_at = time.time()
        _save(out, record)
    return record


def _save(store: MemoryStore, record: DreamRecord) -> None:
    store.put(f"/dreams/{record.id}", msgspec.json.encode(record), author="consolidation")


def _consolidate(src: MemoryStore, out: MemoryStore, record: DreamRecord, consolidator: Consolidator,
                 keep_dead: int, should_cancel: Callable[[], bool]) -> None:
    memories = [m for m in src.list("/") if not m.path.startswith("/dreams/")]
    lessons = src.lessons()
    usage = record.usage
    usage.memories_read = len(memories)
    usage.lessons_read = len(lessons)
    usage.bytes_read = sum(m.size for m in memories)
    plan = consolidator.plan(lessons, record.instructions, usage)
    if should_cancel():
        record.status = DreamStatus.CANCELED
        return
    replaced = {p for _, paths in plan.merged for p in paths}
    changes = record.changes
    changes.lessons_merged = len(replaced)
    changes.merged_lessons_written = len(plan.merged)
    changes.summaries_written = len(plan.summaries)
    batch = out.batch(author="consolidation")
    if record.mode is DreamMode.IN_PLACE:
        for path in sorted(replaced):
            batch.invalidate(path, f"merged by dream {record.id}")
    else:
        by_path = {x.path: x for x in lessons}
        kept = set()
        for m in memories:
            if m.invalidated:
                changes.branches_dropped += 1
                continue
            if m.path in replaced:
                continue
            if m.path in by_path:
                batch.lesson(by_path[m.path])
            else:
                version = src.get(m.path)
                assert version is not None
                batch.put(m.path, version.content)
            kept.add(m.path)
            changes.memories_written += 1
        for path in sorted(kept):
            for edge in src.edges(path):
                if edge.dst in kept:
                    batch.link(edge.src, edge.kind, edge.dst)
        for task_id in src.checkpoints():
            data = src.checkpoint(task_id)
            if data is not None:
                batch.checkpoint(task_id, data)
    for lesson, paths in plan.merged:
        batch.lesson(lesson)
        for path in paths:
            if record.mode is DreamMode.IN_PLACE:
                batch.link(lesson.path, EdgeKind.DERIVED_FROM, path)
    for topic, text in plan.summaries.items():
        batch.put(f"/summaries/{topic}", text)
    if should_cancel():
        record.status = DreamStatus.CANCELED
        return
    out.commit(batch)
    if record.mode is DreamMode.IN_PLACE:
        changes.branches_dropped = out.collapse(keep_dead=keep_dead)
    record.status = DreamStatus.COMPLETED
