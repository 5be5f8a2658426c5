"""Consolidation dreams over a real LMDB store: merge duplicates, non-destructive by default,
one in-place dream at a time, statuses and usage recorded."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from reverie.protocol import Reason
from reverie.runtime.memory import EdgeKind, Lesson, MemoryLocked, MemoryStore
from reverie.runtime.memory.dreams import DreamMode, DreamStatus, dream, in_place_lock

from .conftest import LOCAL_AGENTS, agents_running, eventually, make_config


def seeded_store(path: Path) -> MemoryStore:
    store = MemoryStore.open(path, agent="dreamer")
    batch = store.batch()
    backup = Reason(code="missing_required", text="required operation 'backup' is missing", ops=("backup",))
    for i in range(3):  # the same finding on three tasks: duplicates
        batch.lesson(Lesson(id=f"dup{i}", topic="missing_required", reason=backup,
                            features=("op:backup", f"task:{i}"), task_id=f"t{i}"))
    batch.lesson(Lesson(id="solo", topic="order", features=("op:migrate",),
                        reason=Reason(code="order", text="backup before migrate", ops=("backup", "migrate"))))
    batch.put("/tasks/t0", "task zero")
    batch.put("/tasks/t0/rounds/1/cand/0", "dead branch")
    batch.link("/tasks/t0/rounds/1/cand/0", EdgeKind.DERIVED_FROM, "/tasks/t0")
    batch.invalidate("/tasks/t0/rounds/1/cand/0", "rejected")
    batch.put("/tasks/t0/rounds/1/cand/1", "live branch")
    batch.link("/tasks/t0/rounds/1/cand/1", EdgeKind.DERIVED_FROM, "/tasks/t0")
    batch.checkpoint("t0", b"state")
    store.commit(batch)
    return store


def snapshot(store: MemoryStore) -> list[tuple[str, int, str]]:
    return [(m.path, m.version, m.sha256) for m in store.list("/")]


def test_default_dream_writes_a_new_version_and_leaves_the_input_intact(tmp_path: Path) -> None:
    with seeded_store(tmp_path / "mem") as store:
        before = snapshot(store)
        record = dream(store)
        assert snapshot(store) == before, "the input store is only read"
    assert record.status is DreamStatus.COMPLETED and record.mode is DreamMode.NEW_VERSION
    assert record.usage.lessons_read == 4 and record.usage.memories_read >= 7
    assert (record.changes.lessons_merged, record.changes.merged_lessons_written) == (3, 1)
    assert record.changes.branches_dropped == 1
    with MemoryStore.open(record.output, agent="dreamer") as out:
        lessons = {x.topic: x for x in out.lessons()}
        assert len(out.lessons()) == 2
        merged = lessons["missing_required"]
        assert merged.weight == 3 and set(merged.features) == {"op:backup", "task:0", "task:1", "task:2"}
        assert out.get("/tasks/t0/rounds/1/cand/0") is None, "dead branches are not carried over"
        assert out.get("/tasks/t0/rounds/1/cand/1").text == "live branch"
        assert [e.dst for e in out.edges("/tasks/t0/rounds/1/cand/1")] == ["/tasks/t0"]
        assert out.edges("/tasks/t0", direction="in")[0].src == "/tasks/t0/rounds/1/cand/1"
        assert out.checkpoint("t0") == b"state"
        assert "3 x required operation 'backup' is missing" in out.get("/summaries/missing_required").text
        history = [json.loads(out.get_version(f"/dreams/{record.id}", v.version).content)["status"]
                   for v in out.history(f"/dreams/{record.id}")]
        assert history == ["pending", "running", "completed"]


def test_in_place_dream_invalidates_duplicates_and_keeps_them_in_history(tmp_path: Path) -> None:
    with seeded_store(tmp_path / "mem") as store:
        record = dream(store, in_place=True)
        assert record.status is DreamStatus.COMPLETED and record.output == record.input
        live = store.lessons()
        assert sorted(x.weight for x in live) == [1, 3]
        assert len(store.lessons(include_invalid=True)) == 5
        dup = store.get("/lessons/missing_required/dup0")
        assert dup is not None and dup.invalidated and "merged by dream" in dup.reason
        assert store.recall(["op:backup"])[0].weight == 3
        stored = msgspec.json.decode(store.get(f"/dreams/{record.id}").content)
        assert stored["status"] == "completed" and stored["changes"]["lessons_merged"] == 3


def test_a_second_in_place_dream_is_refused_while_one_runs(tmp_path: Path) -> None:
    with seeded_store(tmp_path / "mem") as store:
        before = snapshot(store)
        with in_place_lock(Path(store.path)):  # an in-place dream holds this for its whole run
            with pytest.raises(MemoryLocked, match="already running"):
                dream(store, in_place=True)
        assert snapshot(store) == before
        assert dream(store, in_place=True).status is DreamStatus.COMPLETED  # free again afterwards


def test_canceled_and_oversized_instructions(tmp_path: Path) -> None:
    with seeded_store(tmp_path / "mem") as store:
        before = snapshot(store)
        record = dream(store, in_place=True, should_cancel=lambda: True)
        assert record.status is DreamStatus.CANCELED
        assert [p for p in snapshot(store) if not p[0].startswith("/dreams/")] == before
        with pytest.raises(ValueError, match="4096"):
            dream(store, instructions="x" * 4097)


async def test_a_dreamer_consolidates_its_memory_on_schedule(nats_url: str, tmp_path: Path) -> None:
    agents = LOCAL_AGENTS.replace("verdict_timeout = 5.0\n", "verdict_timeout = 5.0\nconsolidate_every = 0.3\n", 1)
    config = make_config(nats_url, tmp_path / "data", agents=agents)
    async with agents_running(config, nats_url) as hosts:
        memory = hosts["dreamer"].agent.memory
        batch = memory.store.batch()
        same = Reason(code="order", text="backup before migrate", ops=("backup", "migrate"))
        for i in range(3):  # one finding, learned on three tasks
            batch.lesson(Lesson(id=f"seen{i}", topic="order", reason=same, features=("op:migrate",), task_id=f"t{i}"))
        await memory.commit(batch)

        async def merged() -> bool:
            records = [json.loads((await memory.get(m.path)).content) for m in await memory.list("/dreams/")]
            return any(r["status"] == "completed" and r["changes"]["lessons_merged"] == 3 for r in records)

        await eventually(merged, timeout=20, what="a scheduled in-place dream that merged the duplicates")
        [lesson] = await memory.lessons()
        assert lesson.weight == 3 and lesson.author == "consolidation"
