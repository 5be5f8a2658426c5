"""Listing a swarm's tasks by state, against the local swarm on a real nats-server."""

from __future__ import annotations

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
