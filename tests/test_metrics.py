"""`reverie up --metrics-port`: Prometheus metrics of a running swarm, scraped over HTTP."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from reverie.runtime import Supervisor, connect, load_config

from .conftest import LOCAL_AGENTS, eventually, load_task


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_one_metrics_endpoint_for_the_whole_swarm(tmp_path: Path) -> None:
    path = tmp_path / "swarm.toml"
    path.write_text('swarm = "metrics"\ndata_dir = "data"\nheartbeat_interval = 0.5\n[metrics]\nport = 0\n'
                    + LOCAL_AGENTS)
    config = load_config(path)
    with (tmp_path / "swarm.log").open("w") as log:
        async with Supervisor(config, out=log) as sup, connect(config) as swarm:  # the config's [metrics] port
            assert sup.metrics is not None
            port = sup.metrics.port
            first = await swarm.submit(load_task("db-migration"), kind="plan", timeout=30)
            await swarm.submit(load_task("db-migration"), kind="plan", task_id=first.task_id, timeout=30)  # again

            async def scraped() -> dict[Any, float] | None:
                s = _samples(await asyncio.to_thread(_scrape, port))
                ready = s.get(("reverie_tasks_total", (("kind", "plan"), ("status", "accepted"))))
                beats = [k for k in s if k[0] == "reverie_agent_events_total" and ("agent", "dreamer") in k[1]]
                return s if ready and beats else None

            s = await eventually(scraped, timeout=20, what="the task and the heartbeats in /metrics")
            text = await asyncio.to_thread(_scrape, port)
    assert s[("reverie_tasks_total", (("kind", "plan"), ("status", "accepted")))] == 1  # the repeat counts once
    assert s[("reverie_task_rounds_count", (("kind", "plan"),))] == 1
    assert s[("reverie_task_rounds_bucket", (("kind", "plan"), ("le", "1.0")))] == 0  # it took 2 rounds
    assert s[("reverie_task_rounds_bucket", (("kind", "plan"), ("le", "2.0")))] == 1
    judged = sum(v for (name, labels), v in s.items() if name == "reverie_candidates_judged_total")
    assert judged == sum(len(r.candidates) for r in first.trace)
    assert s[("reverie_verdicts_total", (("critic", "planner"), ("decision", "reject")))] >= 1
    assert s[("reverie_rejection_reasons_total", (("code", "missing_required"), ("critic", "planner")))] >= 1
    assert s[("reverie_agent_up", (("agent", "dreamer"), ("replica", "0"), ("role", "dreamer"),
                                   ("state", "ready")))] == 1
    assert s[("reverie_agent_events_total", (("agent", "dreamer"), ("event", "handled"), ("replica", "0")))] >= 1
    assert first.task_id not in text  # no task ids as labels
    assert all(re.fullmatch(r"reverie_[a-z_]+", f.name) for f in text_string_to_metric_families(text)
               if f.name.startswith("reverie"))
