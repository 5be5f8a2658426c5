"""Listing a swarm's tasks by state, against the local swarm on a real nats-server."""

from __future__ import annotations

import asyncio
from typing import Any

from reverie.protocol import Task, TaskState, new_id

from .conftest import eventually, load_task


async def test_tasks_are_listed_queued_running_paused_and_done(swarm: Any) -> None:
    done = await swarm.submit(load_task("dns-cutover"), kind="plan", timeout=30)
    slow = {**load_task("db-migration"), "simulate_latency": 1.0}  # each round's reasoning takes a second
    running = await swarm.publish(Task(id="slow-" + new_id(), kind="plan", input=slow))
    queued = await swarm.publish(Task(id="nobody-" + new_id(), kind="plan-later", input={}))  # no agent serves it

    async def states() -> dict[str, TaskState] | None:
        found = {i.task_id: i.state for i in await swarm.tasks()}
        return found if found.get(running) is TaskState.RUNNING else None

    listed = await eventually(states, timeout=20, what="the slow task to be running")
    assert listed[done.task_id] is TaskState.DONE
    assert listed[queued] is TaskState.QUEUED
    await swarm.pause(running)

    async def paused() -> list[Any]:
        return [i for i in await swarm.tasks(TaskState.PAUSED) if i.task_id == running]

    [info] = await eventually(paused, timeout=30, what="the slow task to be paused")
    assert info.agent == "dreamer" and info.rounds >= 1
    assert [i.task_id for i in await swarm.tasks(TaskState.QUEUED)] == [queued]
    assert {i.task_id for i in await swarm.tasks(TaskState.DONE)} == {done.task_id}


async def test_cancel_ends_a_running_a_paused_and_a_queued_task_cancelled(swarm: Any) -> None:
    from reverie.protocol import ResultStatus

    slow = {**load_task("impossible"), "simulate_latency": 1.0}  # never accepted: a second per round
    running = "run-" + new_id()
    asked: list[asyncio.Task[bool]] = []

    def on_round(_: Any) -> None:  # cancel once round 1 is judged: the dreamer sees it after round 2
        if not asked:
            asked.append(asyncio.ensure_future(swarm.cancel(running)))

    ended = await swarm.submit(slow, task_id=running, progress=on_round, timeout=30)
    assert asked and ended.status is ResultStatus.CANCELLED and "cancelled by an operator" in ended.reason
    assert ended.rounds == 2  # the round under way when the cancel came was finished and kept

    paused = await swarm.publish(Task(id="park-" + new_id(), kind="plan", input=slow))
    await swarm.pause(paused)

    async def parked() -> bool:  # paused by its dreamer after a round (not only asked to pause)
        return bool([i for i in await swarm.tasks(TaskState.PAUSED) if i.task_id == paused and i.rounds >= 1])

    await eventually(parked, timeout=30, what="the task to be parked")
    assert await swarm.cancel(paused) is True  # it was parked: queued again, to be ended
    assert (await swarm.result(paused, timeout=30)).status is ResultStatus.CANCELLED

    queued = Task(id="q-" + new_id(), kind="plan", input=load_task("dns-cutover"))
    await swarm.cancel(queued.id)  # cancelled before any dreamer took it
    await swarm.publish(queued)
    result = await swarm.result(queued.id, timeout=30)
    assert result.status is ResultStatus.CANCELLED and result.rounds == 0
    assert [i for i in await swarm.tasks(TaskState.QUEUED) if i.task_id in {running, paused, queued.id}] == []
