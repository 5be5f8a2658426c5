"""Crash safety: a writer SIGKILLed at random moments, twenty times over the same store, never
loses a commit it reported, never leaves a torn one, and never leaves the store unopenable."""

from __future__ import annotations

import hashlib
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from reverie.runtime.memory import Edge, EdgeKind, MemoryStore

# Each commit: the log's next version (compare-and-set on the previous one), an entry linked
# to it, and the checkpoint naming the version. The version is printed once the commit returns.
WRITER = """
import sys
from reverie.runtime.memory import Edge, EdgeKind, MemoryStore

def content(i):
    return (f"entry {i}; " * (1 + i % 97)).encode()

with MemoryStore.open(sys.argv[1], agent="writer", map_size=1 << 20) as store:
    head = store.get("/log")
    n, expect = (head.version, head.sha256) if head else (0, None)
    while True:
        n += 1
        batch = store.batch()
        batch.put("/log", content(n), expect=expect)
        batch.put(f"/entries/{n}", content(n), expect=None)
        batch.link(f"/entries/{n}", EdgeKind.DERIVED_FROM, "/log")
        batch.checkpoint("log", str(n).encode())
        version = store.commit(batch)[0]
        assert version.version == n
        expect = version.sha256
        assert store.get("/log").sha256 == expect  # a read transaction, too, can be killed
        print(n, flush=True)
"""


def content(i: int) -> bytes:
    return (f"entry {i}; " * (1 + i % 97)).encode()


def run_and_kill(directory: Path, lines_wanted: int, log: Path) -> list[int]:
    """Start a writer, SIGKILL it after it reported `lines_wanted` commits; every reported one."""
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(directory)], stdout=subprocess.PIPE,
                                stderr=err)
    lines: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True)
    reader.start()
    got: list[int] = []
    deadline = time.monotonic() + 20
    try:
        while len(got) < lines_wanted:
            try:
                got.append(int(lines.get(timeout=0.2)))
            except queue.Empty:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the writer reported {len(got)} of {lines_wanted} commits "
                                         f"(exit {proc.poll()}): {log.read_text()[-2000:]}") from None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        reader.join(timeout=10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"the writer died by itself: {log.read_text()[-2000:]}"
    while not lines.empty():  # reported after we stopped reading, before the kill landed
        got.append(int(lines.get_nowait()))
    return got


def test_sigkilled_writers_lose_no_reported_commit(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    directory = tmp_path / "store"
    reported: list[int] = []
    for _ in range(20):
        got = run_and_kill(directory, rng.choice([0, 1, 2, 5, rng.randint(1, 40)]), tmp_path / "writer.log")
        if reported and got:
            assert got[0] > reported[-1], "a new writer continues after the last commit"
        reported += got
        with MemoryStore.open(directory, agent="check") as store:  # opens after every kill
            head = store.get("/log")
            assert (head.version if head else 0) >= (reported[-1] if reported else 0)
    assert len(reported) > 20
    with MemoryStore.open(directory, agent="check") as store:
        history = store.history("/log")
        n = len(history)
        assert [h.version for h in history] == list(range(1, n + 1)), "contiguous versions"
        assert set(reported) <= set(range(1, n + 1)), "every reported commit is there"
        for h in history:
            v = store.get_version("/log", h.version)
            assert v is not None and v.content == content(h.version)
            assert v.sha256 == h.sha256 == hashlib.sha256(v.content).hexdigest()
            entry = store.get(f"/entries/{h.version}")
            assert entry is not None and entry.content == v.content, "the batch landed whole"
            entry_path = f"/entries/{h.version}"
            assert store.edges(entry_path) == [Edge(entry_path, EdgeKind.DERIVED_FROM, "/log")]
        assert len(store.list("/entries/")) == n, "no torn batch"
        assert store.checkpoint("log") == str(n).encode()
        assert len(store.edges("/log", direction="in")) == n
