"""A full disk, filled while tasks are in flight and then freed (issue 10): no task is lost,
none is answered twice, and the swarm serves again once space returns. The data dir is on a
real 48 MiB tmpfs (the tests run as root, as CI does), filled with a plain file."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reverie.protocol import Codec, Result, ResultStatus, Task
from reverie.runtime import Supervisor, connect, load_config

from .conftest import LOCAL_AGENTS, eventually, load_task


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"cannot mount a small tmpfs (the disk-full test needs root): {done.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> int:
    """Write zeros to `path` until the filesystem refuses; the MiB written."""
    written = 0
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
                written += 1
    except OSError:
        return written


async def test_a_disk_filled_while_tasks_run_and_then_freed_loses_no_task(small_disk: Path) -> None:
    agents = LOCAL_AGENTS.replace("seed = 7", "seed = 7\nlatency = 2.0")  # results arrive while the disk is full
    (small_disk / "swarm.toml").write_text('swarm = "full"\ndata_dir = "data"\n[streams.tasks]\nmax_bytes = 1048576\n'
                                           '[streams.results]\nmax_bytes = 4194304\n' + agents)
    config = load_config(small_disk / "swarm.toml")
    spec = load_task("dns-cutover")
    published: Counter[str] = Counter()
    codec: Codec[Result] = Codec(Result)

    async def count(msg: Any) -> None:
        published[codec.decode(msg.data).task_id] += 1

    with await asyncio.to_thread(open, small_disk.parent / "swarm.log", "w") as log:
        async with Supervisor(config, out=log, health_interval=0.5), connect(config) as swarm:
            await swarm.bus.nc.subscribe(swarm.bus.subjects.all_results, cb=count)
            tasks = [Task(id=f"d{i:02d}", kind="plan", input=spec) for i in range(30)]
            run = asyncio.create_task(swarm.submit_many(tasks, timeout=180))
            await eventually(lambda: _in_flight(swarm), timeout=20, what="the dreamer at work")
            filler = small_disk / "filler"
            assert await asyncio.to_thread(fill, filler) > 0
            # the dreamer's memory commits fail while the disk is full: its tasks are handed back
            await eventually(lambda: _async(_said(small_disk, "No space left on device")), timeout=30,
                             what="a write refused for lack of space")
            os.unlink(filler)
            results = await run
            assert [r.task_id for r in results] == [t.id for t in tasks]
            assert all(r.status is ResultStatus.ACCEPTED for r in results), {r.reason for r in results}
            await eventually(lambda: _stored(swarm, 30), timeout=30, what="30 stored results")
            assert (await swarm.status()).tasks_queued == 0
    assert set(published) == {t.id for t in tasks}
    assert max(published.values()) == 1, [k for k, v in published.items() if v > 1]


async def _in_flight(swarm: Any) -> bool:
    return any(a.agent == "dreamer" and a.in_flight > 0 for a in (await swarm.status()).agents)


async def _async(value: bool) -> bool:
    return value


def _said(disk: Path, text: str) -> bool:
    return text in (disk.parent / "swarm.log").read_text(errors="replace")


async def _stored(swarm: Any, n: int) -> bool:
    return (await swarm.status()).results_stored == n
