"""Storage faults: a value damaged on disk is quarantined once and one bad record never
disables an agent. Real LMDB files, bits flipped in them the way disk corruption would (in the
data file, or through the raw lmdb API), a real dreamer on a real nats-server."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import lmdb
import pytest

from reverie.protocol import Budget, Codec, Reason, Result, ResultStatus, Task
from reverie.runtime import connect
from reverie.runtime.memory import (
    EdgeKind,
    Lesson,
    Memory,
    MemoryError,
    MemoryStore,
    Quarantined,
)
from reverie.runtime.memory.records import version_key

from .conftest import (
    LOCAL_AGENTS,
    agents_running,
    eventually,
    load_task,
    make_config,
    run_cli,
)

# --------------------------------------------------------------------------- damaging a store


def _raw(directory: Path, db: str, key: bytes) -> bytes:
    env = lmdb.open(str(directory), max_dbs=16, subdir=True, readonly=True)
    try:
        with env.begin() as txn:
            value = txn.get(key, db=env.open_db(db.encode(), txn=txn, create=False))
    finally:
        env.close()
    assert value is not None, f"nothing at {key!r} in {db}"
    return bytes(value)


def flip_in_file(directory: Path, db: str, key: bytes) -> bytes:
    """Flip one bit of the value at `key` in `db` where it lies in data.mdb (and in every stale
    copy LMDB's copy-on-write left in free pages), as a failing disk would. The store must be
    closed. Returns the damaged value as LMDB now returns it."""
    before = _raw(directory, db, key)
    data_file = directory / "data.mdb"
    data = data_file.read_bytes()
    offsets, start = [], 0
    while (found := data.find(before, start)) >= 0:
        offsets.append(found)
        start = found + 1
    assert offsets, "the value is not stored contiguously in the file"
    at = len(before) // 2
    with open(data_file, "r+b") as f:
        for offset in offsets:
            f.seek(offset + at)
            byte = f.read(1)[0]
            f.seek(offset + at)
            f.write(bytes([byte ^ 0x08]))
    after = _raw(directory, db, key)
    assert len(after) == len(before) and sum(bin(a ^ b).count("1") for a, b in zip(after, before, strict=True)) == 1
    return after


def flip_via_lmdb(directory: Path, db: str, key: bytes) -> bytes:
    """Flip one bit of the stored sealed value through the raw lmdb API (the store must be closed)."""
    env = lmdb.open(str(directory), max_dbs=16, subdir=True)
    try:
        with env.begin(write=True) as txn:
            handle = env.open_db(db.encode(), txn=txn, create=False)
            value = flip(txn.get(key, db=handle))
            txn.put(key, value, db=handle)
    finally:
        env.close()
    return value


def lesson(id: str, features: tuple[str, ...], text: str = "") -> Lesson:
    return Lesson(id=id, topic="harmful", reason=Reason(code="harmful", text=text or f"lesson {id}"),
                  features=features)


def seq_of(store: MemoryStore, path: str) -> bytes:
    """The recall copy's key of the lesson at `path` (its sequence number)."""
    def find(r: Any) -> bytes:
        head = r.head(path.encode())
        assert head is not None and head.lesson_seq
        return int(head.lesson_seq).to_bytes(8, "big")

    return store._read(find)


def everything(store: MemoryStore) -> dict[str, Any]:
    """Every value of a store as it reads back: versions, edges, checkpoints, lessons."""
    out: dict[str, Any] = {}
    for m in store.list():
        for info in store.history(m.path):
            out[f"{m.path} v{info.version}"] = store.get_version(m.path, info.version)
        out[f"edges {m.path}"] = store.edges(m.path)
    for task_id in store.checkpoints():
        out[f"checkpoint {task_id}"] = store.checkpoint(task_id)
    for x in store.lessons():
        out[f"lesson {x.path}"] = x
    return out


@pytest.fixture
def moved() -> list[Quarantined]:
    return []


def populated(directory: Path) -> None:
    with MemoryStore.open(directory, agent="dreamer") as s:
        b = s.batch()
        b.put("/tasks/a", "task a")
        b.put("/tasks/a/rounds/1", "round 1")
        b.link("/tasks/a/rounds/1", EdgeKind.DERIVED_FROM, "/tasks/a")
        b.put("/tasks/a/result", '{"status": "accepted"}')
        b.checkpoint("a", b"checkpoint a")
        b.checkpoint("b", b"checkpoint b")
        b.lesson(lesson("l1", ("op:backup", "op:migrate")))
        b.lesson(lesson("l2", ("op:backup",)))
        b.lesson(lesson("l3", ("op:migrate", "tag:dangerous")))
        s.commit(b)
        for text in ("one", "two", "three"):
            s.put("/notes/x", text)


# --------------------------------------------------------------------------- the memory layer


def test_a_damaged_version_is_quarantined_once_and_the_path_reads_as_its_last_good_version(
        tmp_path: Path, moved: list[Quarantined], caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "mem"
    populated(directory)
    bad = flip_in_file(directory, "versions", version_key(b"/notes/x", 3))
    with MemoryStore.open(directory, agent="dreamer", on_quarantine=moved.extend) as s:
        for _ in range(3):  # read again and again: moved, logged and counted once
            latest = s.get("/notes/x")
            assert latest is not None and latest.version == 2 and latest.text == "two"
            assert [v.version for v in s.history("/notes/x")] == [1, 2]
            assert s.get_version("/notes/x", 3) is None
            assert [(m.version, m.sha256) for m in s.list("/notes/")] == [(2, latest.sha256)]
            assert s.contents("/notes/") == [("/notes/x", b"two")]
        assert [(q.db, q.where, q.sealed) for q in moved] == [("versions", "/notes/x v3", bad)]
        [entry] = s.quarantined()
        assert entry.where == "/notes/x v3" and "does not authenticate" in entry.error and entry.by == "dreamer"
        assert entry.sealed == bad, "the sealed bytes are kept as found, for an operator with a backup"
        assert s.stats()["quarantined"] == 1
        assert s.put("/notes/x", "three again", expect=latest.sha256).version == 3
    warnings = [r for r in caplog.records if r.name == "reverie.memory" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "/notes/x v3" in warnings[0].getMessage()


def test_a_damaged_head_is_rebuilt_from_its_versions_and_no_version_is_overwritten(
        tmp_path: Path, moved: list[Quarantined]) -> None:
    directory = tmp_path / "mem"
    populated(directory)
    flip_in_file(directory, "heads", b"/notes/x")
    flip_via_lmdb(directory, "heads", b"/lessons/harmful/l1")
    with MemoryStore.open(directory, agent="dreamer", on_quarantine=moved.extend) as s:
        assert s.put("/notes/x", "four").version == 4, "the write found the head damaged, rebuilt it, went on"
        assert [v.content for v in (s.get_version("/notes/x", n) for n in (1, 2, 3, 4)) if v] == \
            [b"one", b"two", b"three", b"four"]
        assert {x.id for x in s.recall(["op:migrate"])} == {"l1", "l3"}, "the rebuilt head found its lesson again"
        b = s.batch()
        b.lesson(lesson("l1", ("tag:other",), text="replaced"))
        s.commit(b)
        assert {x.id for x in s.recall(["op:migrate"])} == {"l3"}, "replacing it unindexed the old postings"
        assert sorted(q.where for q in moved) == ["/lessons/harmful/l1", "/notes/x"]


def test_a_damaged_lesson_is_skipped_by_recall_and_counted_once(tmp_path: Path, moved: list[Quarantined]) -> None:
    directory = tmp_path / "mem"
    populated(directory)
    with MemoryStore.open(directory, agent="dreamer") as s:
        skey = seq_of(s, "/lessons/harmful/l2")
    flip_in_file(directory, "lessons", skey)
    with MemoryStore.open(directory, agent="dreamer", on_quarantine=moved.extend) as s:
        for _ in range(3):
            assert {x.id for x in s.recall(["op:backup", "op:migrate"])} == {"l1", "l3"}
        assert {x.id for x in s.lessons()} == {"l1", "l3"}
        assert [q.where for q in moved] == ["the recall copy of lesson /lessons/harmful/l2 (#2)"]
        assert s.get("/lessons/harmful/l2") is not None, "its version record is good and stays"
        assert s.verify().damaged == ()


def test_a_lessons_damaged_version_is_restored_from_its_recall_copy(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    populated(directory)
    with MemoryStore.open(directory, agent="dreamer") as s:
        before = s.get("/lessons/harmful/l1")
    flip_in_file(directory, "versions", version_key(b"/lessons/harmful/l1", 1))
    with MemoryStore.open(directory, agent="dreamer") as s:
        assert s.get("/lessons/harmful/l1") == before, "the recall copy holds the same content: nothing is lost"
        assert [q.where for q in s.quarantined()] == ["/lessons/harmful/l1 v1"]
        assert {x.id for x in s.recall(["op:backup"])} == {"l1", "l2"} and s.verify().damaged == ()


def test_a_damaged_checkpoint_reads_as_absent_and_so_does_one_its_owner_cannot_decode(
        tmp_path: Path, moved: list[Quarantined]) -> None:
    directory = tmp_path / "mem"
    populated(directory)
    flip_in_file(directory, "checkpoints", b"a")
    with MemoryStore.open(directory, agent="dreamer", on_quarantine=moved.extend) as s:
        assert s.checkpoint("a") is None and s.checkpoints() == ["b"]

        def decode(data: bytes) -> int:
            return json.loads(data)  # "checkpoint b" is not JSON: authentic, but not what its owner wrote

        assert s.checkpoint("b", decode) is None and s.checkpoints() == []
        assert [(q.where, q.error.split(":")[0]) for q in moved] == [
            ("checkpoint of task a", "does not authenticate"), ("checkpoint of task b", "does not decode")]


def test_a_damaged_key_check_does_not_pass_for_a_wrong_key(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    populated(directory)
    flip_in_file(directory, "meta", b"check")
    with MemoryStore.open(directory, agent="dreamer") as s:  # other values open: the marker was damaged
        assert s.get("/tasks/a") is not None and s.verify().damaged == ()
        assert [q.where for q in s.quarantined()] == ["the store's key check"]
    flip_in_file(directory, "meta", b"check")
    key = directory / "data.key"
    key.unlink()
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    with pytest.raises(MemoryError, match="does not open"):
        MemoryStore.open(directory, agent="dreamer")


def test_verify_finds_the_damage_repair_moves_it_and_nothing_good_is_lost(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    populated(directory)
    with MemoryStore.open(directory, agent="dreamer") as s:
        before = everything(s)
        skey = seq_of(s, "/lessons/harmful/l3")
    flip_in_file(directory, "versions", version_key(b"/tasks/a/result", 1))
    flip_via_lmdb(directory, "checkpoints", b"b")
    flip_in_file(directory, "lessons", skey)
    with MemoryStore.open(directory, agent="dreamer") as s:
        found = s.verify()
        assert sorted(d.where for d in found.damaged) == ["/tasks/a/result v1", "checkpoint of task b", "lesson #3"]
        assert s.quarantined() == [], "verify moves nothing"
        moved = s.repair()
        assert sorted(q.where for q in moved) == [
            "/tasks/a/result v1", "checkpoint of task b", "the recall copy of lesson /lessons/harmful/l3 (#3)"]
        # the three, and the result's head: with its only version gone, the path is gone
        assert s.verify().damaged == () and s.verify().checked == found.checked - 4
        assert s.get("/tasks/a/result") is None and s.list("/tasks/a/result") == []
        after = everything(s)
    lost = {"/tasks/a/result v1", "checkpoint b", "lesson /lessons/harmful/l3", "edges /tasks/a/result"}
    assert set(before) - set(after) == lost
    assert {k: v for k, v in before.items() if k not in lost} == after


def test_content_its_reader_cannot_decode_is_quarantined_like_damage(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    with MemoryStore.open(directory, agent="a") as s:
        s.put("/r", '{"ok": 1}')
        s.put("/r", "not json")
        assert s.load("/r", json.loads) == {"ok": 1}
        assert [q.where for q in s.quarantined()] == ["/r v2"] and s.get("/r").version == 1  # type: ignore[union-attr]
        assert s.load("/missing", json.loads) is None


# --------------------------------------------------------------------------- the dreamer

GRACE = "shutdown_grace = 0.2"  # stop mid-task: the in-flight task is handed back (nak), its checkpoint kept


async def test_a_damaged_checkpoint_of_an_in_flight_task_does_not_stop_the_dreamer(
        nats_url: str, tmp_path: Path) -> None:
    config = make_config(nats_url, tmp_path / "data", extra=GRACE)
    directory = config.data_path / "dreamer"
    spec = dict(load_task("long-haul"), simulate_latency=1.0)  # 5 rounds: still dreaming when stopped
    task = Task(id="haul", kind="plan", input=spec, budget=Budget(max_rounds=8, max_seconds=60,
                                                                  candidates_per_round=1))
    async with connect(config, servers=[nats_url]) as client:
        async with agents_running(config, nats_url):
            await client.publish(task)

            async def two_rounds() -> int:
                info = await client.task_info(task.id, timeout=0.3)
                return info.rounds if info.rounds >= 2 else 0

            reached = await eventually(two_rounds, timeout=30, what="two committed rounds")
        assert await client.bus.get_result(task.id) is None, "the task is still in flight"
        flip_in_file(directory, "checkpoints", task.id.encode())

        async with agents_running(config, nats_url) as hosts:
            other = await client.submit(load_task("db-migration"), kind="plan", timeout=30)
            assert other.status is ResultStatus.ACCEPTED, "the dreamer started and serves other tasks"
            result = await client.result(task.id, timeout=60)
            counters = hosts["dreamer"].counters
            assert counters["memory.quarantined"] == 1 and counters["tasks.recovered"] == 1
    assert result.status is ResultStatus.ACCEPTED, result.reason
    rounds = [r.round for r in result.trace]
    assert rounds == list(range(1, len(rounds) + 1)) and len(rounds) > reached
    assert result.resumes == 1, "it resumed from the rounds its memory held, not from round 1"
    assert all(j.verdicts for r in result.trace[:reached] for j in r.candidates), "their verdicts came back too"
    paths = [j.candidate.steps for r in result.trace for j in r.candidates]
    assert len(paths) == len(set(paths)), "no branch the good part of the trace shows rejected is proposed again"
    with MemoryStore.open(directory, agent="dreamer") as s:
        assert [q.where for q in s.quarantined()] == [f"checkpoint of task {task.id}"]
        assert s.verify().damaged == ()


def similar(n: int) -> dict[str, Any]:
    spec = load_task("db-migration")
    spec["title"] = f"Migrate database {n} to schema v3"
    for op in spec["operations"]:
        op["duration"] = op["duration"] + n
    return spec


async def test_a_damaged_lesson_is_skipped_and_similar_tasks_still_get_results(
        nats_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(nats_url, tmp_path / "data")
    directory = config.data_path / "dreamer"
    async with connect(config, servers=[nats_url]) as client:
        async with agents_running(config, nats_url):
            first = await client.submit(load_task("db-migration"), kind="plan", timeout=30)
        assert first.status is ResultStatus.ACCEPTED and first.rounds == 2
        with MemoryStore.open(directory, agent="dreamer") as s:
            learned = sorted(x.path for x in s.lessons())
            assert len(learned) >= 2
            skey = seq_of(s, learned[0])
        flip_in_file(directory, "lessons", skey)

        async with agents_running(config, nats_url) as hosts:
            results = [await client.submit(similar(n), kind="plan", timeout=30) for n in (1, 2, 3)]
            assert all(r.status is ResultStatus.ACCEPTED for r in results), [r.reason for r in results]
            assert hosts["dreamer"].counters["memory.quarantined"] == 1, "quarantined once, not once per recall"
    assert all("recalled" in r.accepted.candidate.rationale for r in results if r.accepted), \
        "the other lessons are still recalled"
    said = [r for r in caplog.records if r.name == "reverie.memory" and "quarantined" in r.getMessage()]
    assert len(said) == 1 and learned[0] in said[0].getMessage()
    with MemoryStore.open(directory, agent="dreamer") as s:
        [entry] = s.quarantined()
        assert entry.db == "lessons" and learned[0] in entry.where
        assert learned[0] not in {x.path for x in s.lessons()}


async def test_a_damaged_stored_result_is_treated_as_not_stored(nats_url: str, tmp_path: Path) -> None:
    config = make_config(nats_url, tmp_path / "data")
    directory = config.data_path / "dreamer"
    task = Task(id="mig", kind="plan", input=load_task("db-migration"))
    async with connect(config, servers=[nats_url]) as client:
        async with agents_running(config, nats_url):
            first = await client.submit(task.input, kind="plan", task_id=task.id, timeout=30)
        assert first.status is ResultStatus.ACCEPTED
        flip_in_file(directory, "versions", version_key(b"/tasks/mig/result", 1))

        async with agents_running(config, nats_url) as hosts:
            # the same task again (another message id, so JetStream queues it): answered from the
            # results stream, not dreamt again, nothing published twice
            assert await client.bus.submit(task, msg_id="again-1")

            async def remembered() -> bool:
                info = await client.task_info(task.id, timeout=0.3)
                return info.state.value == "done" and hosts["dreamer"].counters["memory.quarantined"] == 1

            await eventually(remembered, timeout=20, what="the result to be remembered again")
            info = await client.bus.js.stream_info(client.bus.subjects.results_stream)
            assert info.state.messages == 1
            assert (await client.bus.get_result(task.id)).finished_at == first.finished_at  # type: ignore[union-attr]

            # lost from memory and from the stream: dreamt again
            await client.bus.js.purge_stream(client.bus.subjects.results_stream)
            with MemoryStore.open(directory, agent="dreamer") as s:  # shares the agent's environment
                remembered_again = s.get("/tasks/mig/result")
                assert remembered_again is not None
                vkey = version_key(b"/tasks/mig/result", remembered_again.version)
                s._shared.write(lambda txn: txn.put(vkey, flip(txn.get(vkey, db=s._dbs["versions"])),
                                                    db=s._dbs["versions"]))
            published: asyncio.Queue[Result] = asyncio.Queue()
            codec: Codec[Result] = Codec(Result)

            async def on_result(msg: Any) -> None:
                published.put_nowait(codec.decode(msg.data))

            await client.bus.nc.subscribe(client.bus.subjects.result(task.id), cb=on_result)
            assert await client.bus.submit(task, msg_id="again-2")
            again = await asyncio.wait_for(published.get(), timeout=30)
            assert again.status is ResultStatus.ACCEPTED and again.finished_at > first.finished_at
            assert again.resumes == 1 and [r.round for r in again.trace] == [1, 2], "round 1 came from memory"
            counters = hosts["dreamer"].counters
            assert counters["memory.quarantined"] == 2 and counters["tasks.recovered"] == 1


def flip(sealed: bytes) -> bytes:
    damaged = bytearray(sealed)
    damaged[len(damaged) // 2] ^= 0x40
    return bytes(damaged)


# --------------------------------------------------------------------------- reverie memory check


def test_check_finds_the_damage_repair_moves_it_and_a_second_check_is_clean(tmp_path: Path) -> None:
    (tmp_path / "swarm.toml").write_text('swarm = "faults"\ndata_dir = "data"\n' + LOCAL_AGENTS)
    directory = tmp_path / "data" / "dreamer"
    populated(directory)
    with MemoryStore.open(directory, agent="dreamer") as s:
        before = everything(s)
    flip_in_file(directory, "versions", version_key(b"/tasks/a/rounds/1", 1))
    mem = ("memory", str(tmp_path / "swarm.toml"), "--agent", "dreamer")

    found = run_cli(*mem, "check")
    assert found.returncode == 1, found.stderr
    assert "damaged: /tasks/a/rounds/1 v1 (versions): does not authenticate" in found.stdout
    as_json = run_cli(*mem, "--json", "check")
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and not report["clean"] and report["moved"] == []
    assert [d["where"] for d in report["damaged"]] == ["/tasks/a/rounds/1 v1"]

    repaired = run_cli(*mem, "check", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "moved to quarantine #1: /tasks/a/rounds/1 v1" in repaired.stdout
    assert "clean after moving 1" in repaired.stdout

    again = run_cli(*mem, "--json", "check")
    report = json.loads(again.stdout)
    assert again.returncode == 0 and report["clean"] and report["damaged"] == []
    assert [q["where"] for q in report["quarantined"]] == ["/tasks/a/rounds/1 v1"]
    with MemoryStore.open(directory, agent="dreamer") as s:
        after = everything(s)
        assert s.edges("/tasks/a/rounds/1"), "its edges stay"
    lost = {"/tasks/a/rounds/1 v1", "edges /tasks/a/rounds/1"}  # the path is gone, so it is not listed
    assert set(before) - set(after) == lost
    assert {k: v for k, v in before.items() if k not in lost} == after, "every other record still reads back"


async def test_a_group_commit_over_a_damaged_head_lands_every_batch(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    populated(directory)
    flip_in_file(directory, "heads", b"/notes/x")
    moved: list[Quarantined] = []
    async with await Memory.open(directory, agent="dreamer", on_quarantine=moved.extend) as memory:
        batches = []
        for i in range(5):
            b = memory.store.batch()
            b.put("/notes/x" if i == 2 else f"/notes/y{i}", f"batch {i}")
            batches.append(b)
        committed = await asyncio.gather(*(memory.commit(b) for b in batches))
        assert [v.version for [v] in committed] == [1, 1, 4, 1, 1], "the damaged head was rebuilt, not reset"

        async def counted() -> list[Quarantined]:
            return moved  # delivered on this loop

        [entry] = await eventually(counted, what="the quarantine to be reported")
        assert entry.where == "/notes/x"
        assert [v.version for v in await memory.history("/notes/x")] == [1, 2, 3, 4]
