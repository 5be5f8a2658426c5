"""Continuity: SIGKILLed dreamers resume where they were, tasks survive a NATS restart, every
task gets exactly one result. Real processes under the Supervisor, real LMDB, real nats-server."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from reverie.protocol import (
    Budget,
    Codec,
    Result,
    ResultStatus,
    Task,
    TaskState,
    new_id,
)
from reverie.runtime import Supervisor, connect

from .conftest import eventually, load_task, process_swarm


async def stored_results(swarm: Any, n: int) -> None:
    """Subscribers see a result before its (fsynced) store completes: poll the stream."""

    async def count() -> bool:
        info = await swarm.bus.js.stream_info(swarm.bus.subjects.results_stream)
        assert info.state.messages <= n, "more stored results than tasks"
        return info.state.messages == n

    await eventually(count, timeout=10, what=f"{n} stored results")


def dreamer_pid(sup: Supervisor) -> int:
    pid = sup.processes()["dreamer"]
    assert pid is not None
    return pid


async def wait_ready_again(sup: Supervisor, old_pid: int) -> None:
    [replica] = [r for r in sup.replicas if r.name == "dreamer"]

    async def ready() -> bool:
        return replica.ready_pid not in (None, old_pid)

    await eventually(ready, timeout=30, what="the dreamer to be restarted")


async def test_killed_dreamer_resumes_at_the_round_it_reached(tmp_path: Path) -> None:
    spec = dict(load_task("long-haul"), simulate_latency=0.6)
    budget = Budget(max_rounds=8, max_seconds=60, candidates_per_round=1)
    async with process_swarm(tmp_path) as (sup, swarm):
        task = Task(id="long-" + new_id()[:6], kind="plan", input=spec, budget=budget)
        waiter = asyncio.create_task(swarm.submit_many([task], timeout=90))

        async def two_rounds_committed() -> bool:
            info = await swarm.task_info(task.id, timeout=0.3)
            return info.state is TaskState.RUNNING and info.rounds >= 2

        await eventually(two_rounds_committed, timeout=30, interval=0.1, what="two committed rounds")
        reached = (await swarm.task_info(task.id)).rounds
        old = dreamer_pid(sup)
        os.kill(old, signal.SIGKILL)
        [result] = await waiter
    assert result.status is ResultStatus.ACCEPTED, result.reason
    assert result.resumes == 1
    rounds = [r.round for r in result.trace]
    assert rounds == list(range(1, len(rounds) + 1)), "rounds continue, they do not restart"
    assert len(rounds) > reached >= 2
    paths = [j.candidate.steps for r in result.trace for j in r.candidates]
    assert len(paths) == len(set(paths)), "no branch is proposed twice across the restart"
    assert "resuming task" in (tmp_path / "swarm.log").read_text()


async def test_200_tasks_under_repeated_sigkill_each_get_exactly_one_result(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    spec = dict(load_task("dns-cutover"), simulate_latency=1.0)
    async with process_swarm(tmp_path) as (sup, swarm):
        published: Counter[str] = Counter()
        codec: Codec[Result] = Codec(Result)

        async def count(msg: Any) -> None:
            published[codec.decode(msg.data).task_id] += 1

        await swarm.bus.nc.subscribe(swarm.bus.subjects.all_results, cb=count)
        tasks = [Task(id=f"t{i:03d}", kind="plan", input=spec) for i in range(200)]
        run = asyncio.create_task(swarm.submit_many(tasks, timeout=240))
        kills = 0
        while not run.done() and kills < 8:
            await asyncio.wait([run], timeout=rng.uniform(0.2, 0.8))
            if run.done():
                break
            old = dreamer_pid(sup)
            os.kill(old, signal.SIGKILL)
            kills += 1
            await wait_ready_again(sup, old)
        results = await run
        assert kills >= 3, "the dreamer was killed while tasks were in flight"
        assert [r.task_id for r in results] == [t.id for t in tasks]
        assert all(r.status is ResultStatus.ACCEPTED for r in results)
        await stored_results(swarm, 200)
        assert set(published) == {t.id for t in tasks}
        assert max(published.values()) == 1, [k for k, v in published.items() if v > 1]


async def test_tasks_survive_a_nats_server_restart_and_agents_reconnect(tmp_path: Path) -> None:
    spec = dict(load_task("dns-cutover"), simulate_latency=0.3)
    async with process_swarm(tmp_path) as (sup, swarm):
        assert sup.server is not None
        tasks = [Task(id=f"n{i:02d}", kind="plan", input=spec) for i in range(40)]
        for t in tasks:
            await swarm.publish(t)
        server_pid = sup.server.pid
        assert server_pid is not None
        os.kill(server_pid, signal.SIGKILL)

        async def server_back() -> bool:
            return sup.server is not None and sup.server.running and sup.server.pid != server_pid

        await eventually(server_back, timeout=20, what="the supervisor to restart nats-server")
        back = asyncio.get_running_loop().time()

        async def everyone_answers() -> bool:
            try:
                status = await swarm.status(timeout=0.3)
            except Exception:  # the client itself may still be reconnecting
                return False
            return len(status.agents) == 4

        await eventually(everyone_answers, timeout=15, interval=0.2, what="all agents to reconnect")
        assert asyncio.get_running_loop().time() - back < 10
        results = await asyncio.gather(*(swarm.result(t.id, timeout=120) for t in tasks))
        bad = [(r.task_id, r.status.value, r.reason) for r in results if r.status is not ResultStatus.ACCEPTED]
        assert not bad, bad
        await stored_results(swarm, 40)


async def test_pause_then_resume_by_id_continues_at_the_next_round(tmp_path: Path) -> None:
    spec = dict(load_task("long-haul"), simulate_latency=0.4)
    budget = Budget(max_rounds=8, max_seconds=60, candidates_per_round=1)
    async with process_swarm(tmp_path) as (_, swarm):
        task = Task(id="pausable", kind="plan", input=spec, budget=budget)
        await swarm.publish(task)

        async def started() -> bool:
            return (await swarm.task_info(task.id, timeout=0.3)).rounds >= 1

        await eventually(started, timeout=30, what="the first round")
        await swarm.pause(task.id)

        async def parked() -> bool:
            info = await swarm.task_info(task.id, timeout=0.3)
            return info.state is TaskState.PAUSED and await (await swarm._control()).parked(task.id) is not None

        await eventually(parked, timeout=30, what="the task to be parked")
        paused_at = (await swarm.task_info(task.id)).rounds
        assert await swarm.bus.get_result(task.id) is None
        assert await swarm.resume(task.id) is True
        result = await swarm.result(task.id, timeout=60)
    assert result.status is ResultStatus.ACCEPTED
    assert result.resumes == 1 and result.rounds > paused_at
    assert [r.round for r in result.trace] == list(range(1, result.rounds + 1))


async def test_recalled_lessons_solve_a_similar_task_in_fewer_rounds(swarm) -> None:
    first = await swarm.submit(load_task("db-migration"), kind="plan", timeout=30)
    assert first.status is ResultStatus.ACCEPTED and first.rounds == 2
    similar = load_task("db-migration")
    similar["title"] = "Migrate the invoices database to schema v3"
    for op in similar["operations"]:
        op["duration"] = op["duration"] + 1  # same operations, different costs
    second = await swarm.submit(similar, kind="plan", timeout=30)
    assert second.status is ResultStatus.ACCEPTED
    assert second.rounds < first.rounds
    assert "recalled" in second.accepted.candidate.rationale


async def test_resuming_orphans_after_a_restart_keeps_to_the_dreamers_concurrency(nats_url: str,
                                                                                   tmp_path: Path) -> None:
    """Six checkpoints of a dead predecessor, a dreamer of concurrency 2: never more than two
    dream at once, and all six finish with one stored result each."""

    from reverie.agents.dreamer.records import (
        DreamCheckpoint,
        DreamStatus,
        encode_checkpoint,
        record_task,
    )
    from reverie.runtime.memory import Memory

    from .conftest import CRITICS, agents_running, make_config

    agents = """
[[agents]]
name = "dreamer"
kind = "dreamer"
concurrency = 2
[agents.options]
max_rounds = 5
[agents.options.reasoner_options]
seed = 7
latency = 0.2
""" + CRITICS
    config = make_config(nats_url, tmp_path / "data", agents=agents)
    dead = await asyncio.create_subprocess_exec("true")  # a pid that is gone
    await dead.wait()
    spec = load_task("db-migration")
    async with await Memory.open(config.data_path / "dreamer", agent="dreamer") as memory:
        batch = memory.store.batch()
        for i in range(6):
            task = Task(id=f"orphan{i}", kind="plan", input=spec)
            record_task(batch, task)
            batch.checkpoint(task.id, encode_checkpoint(DreamCheckpoint(task=task, status=DreamStatus.RUNNING,
                                                                        owner_pid=dead.pid)))
        await memory.commit(batch)
    peak = 0
    async with agents_running(config, nats_url) as hosts:
        dreamer = hosts["dreamer"].agent
        async with connect(config, servers=[nats_url]) as swarm:
            async def all_stored() -> bool:
                nonlocal peak
                peak = max(peak, len(dreamer._active))
                return all([await swarm.bus.get_result(f"orphan{i}") is not None for i in range(6)])
            await eventually(all_stored, timeout=60, interval=0.02, what="six resumed results")
        assert dreamer.ctx.counters["tasks.resumed"] == 6
    assert 1 <= peak <= 2, peak


async def test_a_restarted_dreamer_stores_again_the_recent_results_the_stream_lost(nats_url: str,
                                                                                   tmp_path: Path) -> None:
    """The task's message was acked, so only the dreamer's memory still holds its result."""
    from .conftest import agents_running, make_config

    config = make_config(nats_url, tmp_path / "data")
    async with agents_running(config, nats_url), connect(config, servers=[nats_url]) as swarm:
        first = await swarm.submit(load_task("dns-cutover"), kind="plan", task_id="lost1", timeout=30)
        await swarm.bus.js.purge_stream(swarm.bus.subjects.results_stream)  # as a full disk or a bad fsync would
        assert await swarm.bus.get_result("lost1") is None
    async with agents_running(config, nats_url) as hosts, connect(config, servers=[nats_url]) as swarm:
        back = await eventually(lambda: swarm.bus.get_result("lost1"), timeout=20, what="the result stored again")
        assert back.finished_at == first.finished_at and back.status is ResultStatus.ACCEPTED
        counters = hosts["dreamer"].agent.ctx.counters
        await eventually(lambda: _async(counters["results.republished"] == 1), timeout=10, what="the count")


async def _async(value: bool) -> bool:
    return value
