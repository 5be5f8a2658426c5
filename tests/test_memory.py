"""The memory layer on real LMDB files: versions, compare-and-set, the graph, checkpoints,
pruning, recall, encryption at rest, map growth, forks, and the async facade."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reverie.protocol import Reason
from reverie.runtime import ReverieError
from reverie.runtime.memory import (
    ANY,
    Edge,
    EdgeKind,
    Lesson,
    Memory,
    MemoryError,
    MemoryStore,
    PreconditionFailed,
    WrongProcess,
)
from reverie.runtime.memory.records import POSTINGS_PER_FEATURE


@pytest.fixture
def store(tmp_path: Path):
    with MemoryStore.open(tmp_path / "mem", agent="dreamer") as s:
        yield s


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def lesson(id: str, features: tuple[str, ...], *, weight: float = 1.0, created_at: float = 0.0,
           topic: str = "harmful", text: str = "") -> Lesson:
    return Lesson(id=id, topic=topic, reason=Reason(code=topic, text=text or f"lesson {id}"),
                  features=features, weight=weight, created_at=created_at)


def snapshot(s: MemoryStore) -> tuple[object, ...]:
    """Everything observable about a store, to compare before and after a refused commit."""
    paths = [m.path for m in s.list()]
    return (s.list(), [s.history(p) for p in paths], [s.edges(p) for p in paths],
            [(t, s.checkpoint(t)) for t in s.checkpoints()], s.lessons(include_invalid=True), s.stats())


# --------------------------------------------------------------------------- versions


def test_versions_history_authors_and_text(store: MemoryStore) -> None:
    v1 = store.put("/notes/a", "first")
    v2 = store.put("/notes/a", b"second", author="critic")
    assert (v1.version, v1.author, v1.text) == (1, "dreamer", "first")
    assert (v2.version, v2.author, v2.content) == (2, "critic", b"second")
    assert v1.sha256 == sha("first") and v2.created_at >= v1.created_at > 0
    latest = store.get("/notes/a")
    assert latest == v2 and latest.text == "second"
    assert [(h.version, h.author, h.size, h.sha256) for h in store.history("/notes/a")] == [
        (1, "dreamer", 5, sha("first")), (2, "critic", 6, sha("second"))]
    assert store.get_version("/notes/a", 1) == v1
    assert store.get_version("/notes/a", 3) is None and store.get_version("/notes/a", 0) is None
    assert store.get("/notes/missing") is None and store.history("/notes/missing") == []
    assert store.put("/other", "x").version == 1, "version numbers start at 1 per path"


def test_list_by_prefix_in_path_order(store: MemoryStore) -> None:
    for path in ["/tasks/b", "/tasks/a/rounds/1", "/tasks/a", "/tasksx", "/lessons/x/1"]:
        store.put(path, path)
    store.put("/tasks/a", "again")
    store.commit(_invalidating("/tasks/b", store))
    assert [m.path for m in store.list("/tasks/")] == ["/tasks/a", "/tasks/a/rounds/1", "/tasks/b"]
    assert [m.path for m in store.list("/tasks/", include_invalid=False)] == ["/tasks/a", "/tasks/a/rounds/1"]
    assert [m.path for m in store.list()] == ["/lessons/x/1", "/tasks/a", "/tasks/a/rounds/1", "/tasks/b", "/tasksx"]
    a = store.list("/tasks/a")[0]
    assert (a.version, a.size, a.sha256, a.invalidated) == (2, 5, sha("again"), False)


def _invalidating(path: str, s: MemoryStore, reason: str = "dead end"):
    batch = s.batch()
    batch.invalidate(path, reason)
    return batch


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "m", agent="a") as s:
        s.put("/x", "one")
        b = s.batch()
        b.put("/y", "two")
        b.link("/y", EdgeKind.DERIVED_FROM, "/x")
        b.checkpoint("t1", b"state")
        b.lesson(lesson("l1", ("op",)))
        s.commit(b)
        before = snapshot(s)
    with MemoryStore.open(tmp_path / "m", agent="a") as s:
        assert snapshot(s) == before
        assert s.recall(["op"])[0].id == "l1"


def test_bad_arguments_are_refused_early(store: MemoryStore) -> None:
    batch = store.batch()
    for bad in ["relative", "/nul\0here", "/" + "x" * 300]:
        with pytest.raises(MemoryError):
            batch.put(bad, "x")
    with pytest.raises(TypeError):
        batch.put("/x", 42)  # type: ignore[arg-type]
    with pytest.raises(MemoryError):
        batch.link("/a", "friend-of", "/b")  # type: ignore[arg-type]
    with pytest.raises(MemoryError):
        batch.lesson(lesson("a/b", ("f",)))
    assert len(batch) == 0
    assert issubclass(MemoryError, ReverieError)


# --------------------------------------------------------------------------- compare-and-set


def test_stale_sha256_fails_and_changes_nothing(store: MemoryStore) -> None:
    v1 = store.put("/plan", "draft")
    v2 = store.put("/plan", "final", expect=v1.sha256)
    assert v2.version == 2
    with pytest.raises(PreconditionFailed) as info:
        store.put("/plan", "lost update", expect=v1.sha256)
    assert (info.value.path, info.value.expected, info.value.actual) == ("/plan", v1.sha256, sha("final"))
    assert store.get("/plan") == v2
    assert len(store.history("/plan")) == 2


def test_invalidate_with_a_stale_sha256_fails_and_changes_nothing(store: MemoryStore) -> None:
    v1 = store.put("/note", "draft")
    v2 = store.put("/note", "final")
    batch = store.batch()
    batch.invalidate("/note", "deleted", expect=v1.sha256)
    with pytest.raises(PreconditionFailed) as info:
        store.commit(batch)
    assert (info.value.expected, info.value.actual) == (v1.sha256, sha("final"))
    assert store.get("/note") == v2
    batch = store.batch()
    batch.invalidate("/note", "deleted", expect=v2.sha256)
    store.commit(batch)
    assert store.get("/note").invalidated  # type: ignore[union-attr]


def test_expect_none_means_must_not_exist(store: MemoryStore) -> None:
    created = store.put("/once", "a", expect=None)
    with pytest.raises(PreconditionFailed) as info:
        store.put("/once", "b", expect=None)
    assert (info.value.expected, info.value.actual) == (None, sha("a"))
    with pytest.raises(PreconditionFailed) as info:
        store.put("/never", "b", expect=sha("a"))
    assert info.value.actual is None
    assert store.get("/once") == created and store.get("/never") is None
    assert store.put("/once", "c", expect=ANY).version == 2


def test_one_failing_precondition_writes_nothing(store: MemoryStore) -> None:
    base = store.batch()
    base.put("/a", "a1")
    base.checkpoint("t", b"old checkpoint")
    base.lesson(lesson("keep", ("f1",)))
    store.commit(base)
    before = snapshot(store)
    batch = store.batch()
    batch.put("/a", "a2", expect=sha("a1"))
    batch.put("/b", "new")
    batch.link("/b", EdgeKind.DERIVED_FROM, "/a")
    batch.checkpoint("t", b"new checkpoint")
    batch.lesson(lesson("new", ("f1", "f2")))
    batch.invalidate("/a", "superseded")
    batch.put("/c", "c", expect=sha("something else"))
    with pytest.raises(PreconditionFailed):
        store.commit(batch)
    assert snapshot(store) == before
    assert store.checkpoint("t") == b"old checkpoint"
    assert [x.id for x in store.recall(["f1", "f2"])] == ["keep"]


def test_operations_in_a_batch_see_each_other(store: MemoryStore) -> None:
    batch = store.batch()
    batch.put("/p", "one", expect=None)
    batch.put("/p", "two", expect=sha("one"))
    batch.invalidate("/p", "tried")
    versions = store.commit(batch)
    assert [(v.version, v.text, v.invalidated) for v in versions] == [(1, "one", False), (2, "two", False),
                                                                     (3, "two", True)]


def test_invalidating_a_missing_path_aborts_the_batch(store: MemoryStore) -> None:
    batch = store.batch()
    batch.put("/a", "a")
    batch.invalidate("/nothing", "why")
    with pytest.raises(MemoryError, match="/nothing"):
        store.commit(batch)
    assert store.get("/a") is None


# --------------------------------------------------------------------------- graph


def _dream_graph(s: MemoryStore) -> None:
    b = s.batch()
    b.put("/t/1", "task")
    for r in (1, 2):
        b.put(f"/t/1/r/{r}", f"round {r}")
        b.link(f"/t/1/r/{r}", EdgeKind.DERIVED_FROM, "/t/1")
        for c in (0, 1):
            cand = f"/t/1/r/{r}/c/{c}"
            b.put(cand, "candidate")
            b.link(cand, EdgeKind.DERIVED_FROM, f"/t/1/r/{r}")
            b.put(cand + "/v/rules", "verdict")
            b.link(cand, EdgeKind.REJECTED_BY, cand + "/v/rules")
    b.link("/t/1/r/2", EdgeKind.REFINES, "/t/1/r/1")
    b.put("/t/1/r/2/c/1/v/plan", "accept")
    b.link("/t/1/r/2/c/1/v/plan", EdgeKind.SUPPORTS, "/t/1/r/2/c/1")
    s.commit(b)


def test_edges_in_both_directions(store: MemoryStore) -> None:
    _dream_graph(store)
    cand = "/t/1/r/2/c/1"
    assert store.edges(cand) == [Edge(cand, EdgeKind.DERIVED_FROM, "/t/1/r/2"),
                                 Edge(cand, EdgeKind.REJECTED_BY, cand + "/v/rules")]
    assert store.edges(cand, kind=EdgeKind.REJECTED_BY) == [Edge(cand, EdgeKind.REJECTED_BY, cand + "/v/rules")]
    assert store.edges(cand, direction="in") == [Edge(cand + "/v/plan", EdgeKind.SUPPORTS, cand)]
    assert store.edges(cand + "/v/rules", direction="in") == [Edge(cand, EdgeKind.REJECTED_BY, cand + "/v/rules")]
    assert [e.src for e in store.edges("/t/1", direction="in")] == ["/t/1/r/1", "/t/1/r/2"]
    assert store.edges("/t/1") == [] and store.edges("/nowhere", direction="in") == []
    store.commit(_linking(store, cand, EdgeKind.DERIVED_FROM, "/t/1/r/2"))
    assert len(store.edges(cand)) == 2, "linking twice is idempotent"


def _linking(s: MemoryStore, src: str, kind: EdgeKind, dst: str):
    b = s.batch()
    b.link(src, kind, dst)
    return b


def test_walk_task_round_candidate_verdict(store: MemoryStore) -> None:
    _dream_graph(store)
    down = store.walk("/t/1", direction="in")
    assert down[0] == "/t/1" and len(down) == len(set(down))
    assert set(down) == {"/t/1", "/t/1/r/1", "/t/1/r/2", *(f"/t/1/r/{r}/c/{c}" for r in (1, 2) for c in (0, 1)),
                         "/t/1/r/2/c/1/v/plan"}
    assert down.index("/t/1/r/1") < down.index("/t/1/r/1/c/0"), "breadth first"
    up = store.walk("/t/1/r/2/c/1/v/rules", direction="in")
    assert up == ["/t/1/r/2/c/1/v/rules", "/t/1/r/2/c/1", "/t/1/r/2/c/1/v/plan"]
    assert store.walk("/t/1/r/2/c/0") == ["/t/1/r/2/c/0", "/t/1/r/2", "/t/1/r/2/c/0/v/rules", "/t/1", "/t/1/r/1"]
    assert store.walk("/t/1/r/2/c/0", kinds=[EdgeKind.DERIVED_FROM]) == ["/t/1/r/2/c/0", "/t/1/r/2", "/t/1"]
    assert store.walk("/t/1/r/2/c/0", max_depth=1) == ["/t/1/r/2/c/0", "/t/1/r/2", "/t/1/r/2/c/0/v/rules"]
    rejected = store.walk("/t/1/r/1/c/0/v/rules", direction="in", kinds=[EdgeKind.REJECTED_BY])
    assert rejected == ["/t/1/r/1/c/0/v/rules", "/t/1/r/1/c/0"]


# --------------------------------------------------------------------------- checkpoints


def test_checkpoints_commit_with_the_memories(store: MemoryStore) -> None:
    b = store.batch()
    b.put("/t/a/r/1", "round 1")
    b.checkpoint("a", b"after round 1")
    b.checkpoint("b", b"b1")
    store.commit(b)
    assert store.checkpoints() == ["a", "b"] and store.checkpoint("a") == b"after round 1"
    b = store.batch()
    b.put("/t/a/r/2", "round 2")
    b.checkpoint("a", b"after round 2")
    b.checkpoint("b", None)
    store.commit(b)
    assert store.checkpoints() == ["a"] and store.checkpoint("a") == b"after round 2"
    assert store.checkpoint("b") is None
    b = store.batch()
    b.put("/t/a/r/3", "round 3", expect=None)
    b.checkpoint("a", b"after round 3")
    b.put("/t/a/r/2", "rewrite", expect=None)
    with pytest.raises(PreconditionFailed):
        store.commit(b)
    assert store.checkpoint("a") == b"after round 2" and store.get("/t/a/r/3") is None


# --------------------------------------------------------------------------- pruning


def test_invalidate_keeps_history_and_flags_the_head(store: MemoryStore) -> None:
    store.put("/t/1/c/0", "rm -rf /", author="dreamer")
    batch = store.batch(author="rules")
    batch.invalidate("/t/1/c/0", "harmful: rm_rf")
    [dead] = store.commit(batch)
    assert (dead.version, dead.invalidated, dead.reason, dead.author, dead.text) == (
        2, True, "harmful: rm_rf", "rules", "rm -rf /")
    assert store.get("/t/1/c/0") == dead
    assert [(h.version, h.invalidated) for h in store.history("/t/1/c/0")] == [(1, False), (2, True)]
    assert store.get_version("/t/1/c/0", 1).invalidated is False  # type: ignore[union-attr]
    assert store.put("/t/1/c/0", "revived").invalidated is False


def test_recall_excludes_invalidated_lessons(store: MemoryStore) -> None:
    b = store.batch()
    b.lesson(lesson("bad", ("backup", "migrate"), weight=9))
    b.lesson(lesson("good", ("backup",)))
    store.commit(b)
    assert [x.id for x in store.recall(["backup", "migrate"])] == ["bad", "good"]
    store.commit(_invalidating("/lessons/harmful/bad", store, "merged"))
    assert [x.id for x in store.recall(["backup", "migrate"])] == ["good"]
    assert [x.id for x in store.lessons()] == ["good"]
    assert [x.id for x in store.lessons(include_invalid=True)] == ["bad", "good"]
    assert store.stats()["lessons"] == 1
    store.commit(_lessoning(store, lesson("bad", ("migrate",), weight=2)))
    assert [x.id for x in store.recall(["migrate"])] == ["bad"], "a new version revives it"


def _lessoning(s: MemoryStore, *lessons: Lesson):
    b = s.batch()
    for x in lessons:
        b.lesson(x)
    return b


def test_collapse_empties_old_dead_branches_but_keeps_metadata_and_lessons(store: MemoryStore) -> None:
    for i in range(5):
        store.put(f"/dead/{i}", f"v1 of {i}")
        store.put(f"/dead/{i}", f"v2 of {i}", author="other")
        store.commit(_invalidating(f"/dead/{i}", store, f"pruned {i}"))
    store.put("/alive", "alive")
    store.commit(_lessoning(store, lesson("l1", ("f",), text="keep me")))
    store.commit(_invalidating("/lessons/harmful/l1", store))
    before = {i: store.history(f"/dead/{i}") for i in range(5)}
    assert store.collapse(keep_dead=2) == 3
    for i in range(3):
        history = store.history(f"/dead/{i}")
        assert [(h.version, h.sha256, h.author, h.created_at, h.invalidated) for h in history] == [
            (h.version, h.sha256, h.author, h.created_at, h.invalidated) for h in before[i]]
        assert all(h.size == 0 for h in history)
        for h in history:
            v = store.get_version(f"/dead/{i}", h.version)
            assert v is not None and v.content == b"" and v.collapsed and v.sha256 == h.sha256
        assert store.get(f"/dead/{i}").reason == f"pruned {i}"  # type: ignore[union-attr]
    for i in (3, 4):
        assert store.history(f"/dead/{i}") == before[i]
        assert store.get_version(f"/dead/{i}", 1).text == f"v1 of {i}"  # type: ignore[union-attr]
    assert store.get("/alive").text == "alive"  # type: ignore[union-attr]
    assert store.lessons(include_invalid=True)[0].reason.text == "keep me"
    assert store.collapse(keep_dead=2) == 0
    assert store.collapse(keep_dead=0) == 2


# --------------------------------------------------------------------------- recall


def test_recall_ranks_by_shared_features_then_weight_then_recency(store: MemoryStore) -> None:
    store.commit(_lessoning(
        store,
        lesson("three", ("a", "b", "c", "x"), weight=0.1, created_at=1.0),
        lesson("two-heavy", ("a", "b"), weight=5.0, created_at=1.0),
        lesson("two-new", ("a", "c"), weight=1.0, created_at=3.0),
        lesson("two-old", ("b", "c"), weight=1.0, created_at=2.0),
        lesson("one", ("c", "y"), weight=100.0, created_at=9.0),
        lesson("none", ("z",), weight=1000.0),
    ))
    ranked = [x.id for x in store.recall(["a", "b", "c", "q"])]
    assert ranked == ["three", "two-heavy", "two-new", "two-old", "one"]
    assert [x.id for x in store.recall(["a", "b", "c"], limit=2)] == ["three", "two-heavy"]
    assert store.recall(["q"]) == [] and store.recall([]) == []
    assert store.recall(["a", "a", "a"], limit=1)[0].id == "two-heavy", "repeated features count once"


def test_a_lesson_with_the_same_id_replaces_the_old_one(store: MemoryStore) -> None:
    store.commit(_lessoning(store, lesson("l", ("old", "both"), weight=1.0)))
    [v] = store.commit(_lessoning(store, lesson("l", ("new", "both"), weight=7.0)))
    assert v.path == "/lessons/harmful/l" and v.version == 2
    assert store.recall(["old"]) == []
    [again] = store.recall(["new", "both"])
    assert (again.weight, again.features, again.author) == (7.0, ("new", "both"), "dreamer")
    assert again.created_at > 0, "created_at is filled in on commit"
    assert len(store.history("/lessons/harmful/l")) == 2 and len(store.lessons()) == 1


def test_a_plain_put_over_a_lesson_unindexes_it(store: MemoryStore) -> None:
    store.commit(_lessoning(store, lesson("l", ("f",))))
    store.put("/lessons/harmful/l", "not a lesson any more")
    assert store.recall(["f"]) == [] and store.lessons(include_invalid=True) == []


def test_a_hot_feature_indexes_only_its_newest_lessons(store: MemoryStore) -> None:
    n = POSTINGS_PER_FEATURE + 5
    store.commit(_lessoning(store, *(lesson(f"l{i:05d}", ("hot", f"own{i}"), created_at=i + 1.0) for i in range(n))))
    hot = store.recall(["hot"], limit=n)
    assert [x.id for x in hot] == [f"l{i:05d}" for i in reversed(range(5, n))]
    assert [x.id for x in store.recall(["own0"])] == ["l00000"], "recallable through its rarer features"
    assert "l00000" in [x.id for x in store.recall(["own0", "hot"], limit=n)]
    assert len(store.lessons()) == n


def test_lessons_by_topic(store: MemoryStore) -> None:
    store.commit(_lessoning(store, lesson("1", ("f",), topic="harmful"), lesson("2", ("f",), topic="order"),
                            lesson("3", ("g",), topic="harmful")))
    assert [x.id for x in store.lessons("harmful")] == ["1", "3"]
    assert [x.topic for x in store.lessons()] == ["harmful", "harmful", "order"]
    assert store.lessons("harm") == []


# --------------------------------------------------------------------------- security


def test_key_file_is_0600_and_directory_0700(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        with MemoryStore.open(tmp_path / "agent", agent="a") as s:
            s.put("/x", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "agent").st_mode) == 0o700
    key = tmp_path / "agent" / "data.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and key.stat().st_size == 32
    for name in ("data.mdb", "lock.mdb"):
        assert stat.S_IMODE(os.stat(tmp_path / "agent" / name).st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "agent").iterdir()) == ["data.key", "data.mdb", "lock.mdb"]


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    MemoryStore.open(tmp_path / "agent", agent="a").close()
    key = tmp_path / "agent" / "data.key"
    for mode in (0o644, 0o640, 0o604):
        os.chmod(key, mode)
        with pytest.raises(MemoryError, match=str(key)):
            MemoryStore.open(tmp_path / "agent", agent="a")
    os.chmod(key, 0o600)
    MemoryStore.open(tmp_path / "agent", agent="a").close()


def test_another_key_does_not_open_the_store(tmp_path: Path) -> None:
    MemoryStore.open(tmp_path / "agent", agent="a").close()
    key = tmp_path / "agent" / "data.key"
    key.unlink()
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    with pytest.raises(MemoryError, match="does not open"):
        MemoryStore.open(tmp_path / "agent", agent="a")


def test_no_plaintext_reaches_the_files(tmp_path: Path) -> None:
    marker = "zebra-7f3a9c-marker"
    directory = tmp_path / "agent"
    with MemoryStore.open(directory, agent="a") as s:
        b = s.batch(author=f"author {marker}")
        b.put("/content", f"secret content {marker} " * 20)
        b.put("/small", marker)
        b.checkpoint("task-1", f"checkpoint {marker}".encode())
        b.lesson(lesson("l1", (f"op_{marker}", "backup"), text=f"reason {marker}"))
        s.commit(b)
        s.commit(_invalidating("/small", s, f"why {marker}"))
        assert s.recall([f"op_{marker}"])[0].reason.text == f"reason {marker}"
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"data.mdb", "lock.mdb", "data.key"}
    for needle in (marker.encode(), marker.encode("utf-16-le"), sha(marker).encode(), bytes.fromhex(sha(marker))):
        for p in files:
            assert needle not in p.read_bytes(), f"{needle!r} found in {p.name}"


# --------------------------------------------------------------------------- map, processes


def test_the_map_grows_on_demand(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "m", agent="a", map_size=1 << 20) as s:
        blob = os.urandom(64 << 10)
        for i in range(40):
            b = s.batch()
            for j in range(10):
                b.put(f"/blob/{i}/{j}", blob)
            b.checkpoint(f"t{i}", blob)
            s.commit(b)
        stats = s.stats()
        assert stats["versions"] == 400 and stats["map_size"] >= stats["used_bytes"] > 25 << 20
        assert s.get("/blob/39/9").content == blob  # type: ignore[union-attr]


WRITER = """
import sys
from reverie.runtime.memory import MemoryStore
with MemoryStore.open(sys.argv[1], agent="cli", map_size=1 << 20) as s:
    for i in range(int(sys.argv[2])):
        s.put(f"/other/{i}", bytes(256 << 10))
"""


def test_another_process_grows_the_map_under_an_open_store(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "m", agent="a", map_size=1 << 20) as s:
        s.put("/mine", "before")
        subprocess.run([sys.executable, "-c", WRITER, str(tmp_path / "m"), "24"], check=True, timeout=60)
        assert len(s.list("/other/")) == 24, "this process adopts the grown map"
        s.put("/mine", "after")
        assert s.stats()["map_size"] > 1 << 20
    with MemoryStore.open(tmp_path / "m", agent="a") as s:
        assert s.get("/mine").version == 2  # type: ignore[union-attr]


def test_a_forked_child_cannot_use_the_store(store: MemoryStore) -> None:
    store.put("/x", "parent")
    pid = os.fork()
    if pid == 0:  # the child: exit codes tell the parent what happened
        code = 0
        try:
            for call in (lambda: store.get("/x"), lambda: store.put("/x", "child"), store.stats):
                try:
                    call()
                    code = 1
                except WrongProcess:
                    pass
            store.close()  # forgets the store without touching the parent's LMDB state
            with MemoryStore.open(store.path, agent="child") as own:  # the child opens its own
                if own.put("/x", "child").version != 2:
                    code = 3
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("/x").author == "child"  # type: ignore[union-attr]
    assert store.put("/x", "parent again").version == 3


def test_two_opens_in_one_process_share_the_environment(tmp_path: Path) -> None:
    a = MemoryStore.open(tmp_path / "m", agent="a")
    b = MemoryStore.open(tmp_path / "m", agent="b")
    a.put("/x", "from a")
    assert b.get("/x").author == "a"  # type: ignore[union-attr]
    a.close()
    assert b.put("/x", "from b").version == 2
    b.close()
    with pytest.raises(MemoryError, match="closed"):
        b.get("/x")


# --------------------------------------------------------------------------- async facade


async def test_memory_facade_commits_concurrently_on_one_thread(tmp_path: Path) -> None:
    async with await Memory.open(tmp_path / "m", agent="dreamer") as memory:
        threads: set[int] = set()
        transactions: list[int] = []
        commit_many = memory.store.commit_many

        def spying_commit_many(batches):
            threads.add(threading.get_ident())
            transactions.append(len(batches))
            return commit_many(batches)

        memory.store.commit_many = spying_commit_many  # type: ignore[method-assign]

        async def one(i: int) -> int:
            b = memory.store.batch()
            b.put(f"/c/{i}", f"coroutine {i}")
            b.put("/counter", str(i))
            b.checkpoint(f"t{i}", str(i).encode())
            return len(await memory.commit(b))

        assert await asyncio.gather(*(one(i) for i in range(100))) == [2] * 100
        worker = await memory.run(threading.get_ident)
        assert threads == {worker} and worker != threading.get_ident()
        assert sum(transactions) == 100 and len(transactions) < 100, "concurrent batches share transactions"
        assert len(await memory.list("/c/")) == 100
        assert len(await memory.history("/counter")) == 100
        assert len(await memory.checkpoints()) == 100
        assert (await memory.get("/c/7")).text == "coroutine 7"  # type: ignore[union-attr]
        assert (await memory.stats())["versions"] == 200
        await memory.put("/x", "x", expect=None)
        with pytest.raises(PreconditionFailed):
            await memory.put("/x", "y", expect=None)
    with pytest.raises(MemoryError, match="closed"):
        await memory.get("/x")


async def test_group_commit_isolates_a_failing_batch(tmp_path: Path) -> None:
    async with await Memory.open(tmp_path / "m", agent="dreamer") as memory:
        await memory.put("/taken", "first")

        async def write(path: str, expect: object) -> object:
            b = memory.store.batch()
            b.put(path, "new", expect=expect)  # type: ignore[arg-type]
            b.checkpoint(path.strip("/"), b"cp")
            try:
                return len(await memory.commit(b))
            except PreconditionFailed as exc:
                return exc

        outcomes = await asyncio.gather(*(write(f"/free/{i}", None) for i in range(20)),
                                        write("/taken", None), *(write(f"/more/{i}", None) for i in range(20)))
        assert next(o for o in outcomes if isinstance(o, PreconditionFailed)).path == "/taken"
        assert sum(1 for o in outcomes if o == 1) == 40
        assert (await memory.get("/taken")).text == "first"  # type: ignore[union-attr]
        assert await memory.checkpoint("taken") is None, "the failed batch wrote nothing"
        assert len(await memory.list("/free/")) == 20 and len(await memory.list("/more/")) == 20
