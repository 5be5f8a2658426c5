"""`reverie up --metrics-port`: Prometheus metrics of a running swarm, scraped over HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reverie.protocol import (
    AgentState,
    AgentStatus,
    Budget,
    Candidate,
    Codec,
    Decision,
    JudgedCandidate,
    Result,
    ResultStatus,
    RoundTrace,
    Task,
    Verdict,
    encode,
)
from reverie.runtime import Reply, Supervisor, connect, load_config
from reverie.runtime.durations import DURATION_BUCKETS, durations_of, record
from reverie.runtime.metrics import MetricsServer, SwarmMetrics

from .conftest import LOCAL_AGENTS, ROOT, agents_running, eventually, load_task, make_config
from .test_code_tasks import AGENTS as CODE_AGENTS


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


CODE_SWARM = CODE_AGENTS  # a dreamer, the sandbox critic and the plan critics



async def test_verdict_latency_sandbox_runs_and_memory_size_in_metrics(nats_url: str, tmp_path: Path) -> None:
    config = make_config(nats_url, tmp_path / "data", agents=CODE_SWARM, extra="heartbeat_interval = 0.5")
    code = json.loads((ROOT / "deploy" / "tasks" / "code" / "median.json").read_text())
    async with agents_running(config, nats_url), connect(config, servers=[nats_url]) as swarm, \
            MetricsServer(swarm.bus, 0) as server:
        plan = await swarm.submit(load_task("db-migration"), kind="plan", timeout=60)
        fixed = await swarm.submit(code, kind="code", budget=Budget(max_rounds=8, max_seconds=120,
                                                                    candidates_per_round=4), timeout=180)
        assert plan.status is ResultStatus.ACCEPTED and fixed.status is ResultStatus.ACCEPTED, fixed.reason
        judged_by = {v.critic for r in (plan, fixed) for rnd in r.trace for j in rnd.candidates for v in j.verdicts}
        assert {"sandbox", "rules", "planner", "budget"} <= judged_by
        judged = [j for r in (plan, fixed) for rnd in r.trace for j in rnd.candidates]
        assert all(set(j.latency) == {v.critic for v in j.verdicts} for j in judged)  # one per verdict kept
        assert all(0 < seconds < 60 for j in judged for seconds in j.latency.values())

        async def scraped() -> dict[Any, float] | None:
            s = _samples(await asyncio.to_thread(_scrape, server.port))
            counts = {dict(labels)["critic"]: v for (name, labels), v in s.items()
                      if name == "reverie_verdict_latency_seconds_count"}
            runs = sum(v for (name, _), v in s.items() if name == "reverie_sandbox_run_seconds_count")
            memory = s.get(("reverie_memory_store_bytes", (("agent", "dreamer"), ("replica", "0"))), 0)
            ready = judged_by <= {c for c, n in counts.items() if n > 0} and runs > 0 and memory > 0
            return s if ready else None

        s = await eventually(scraped, timeout=30, what="verdict latency, sandbox runs and memory size in /metrics")
    sandbox = (("agent", "sandbox"), ("replica", "0"))
    count = s[("reverie_sandbox_run_seconds_count", sandbox)]
    assert s[("reverie_sandbox_run_seconds_bucket", (*sandbox[:1], ("le", "+Inf"), sandbox[1]))] == count
    assert s[("reverie_sandbox_run_seconds_sum", sandbox)] > 0
    assert not [labels for (name, labels), _ in s.items() if name == "reverie_agent_events_total"
                and dict(labels)["event"].startswith("seconds.")]
    assert 0 < count <= s[("reverie_agent_events_total", (("agent", "sandbox"), ("event", "sandbox.runs"),
                                                       ("replica", "0")))]
    assert sum(v for (name, _), v in s.items() if name == "reverie_verdict_latency_seconds_count") \
        == sum(len(j.latency) for j in judged)


def test_duration_histograms_are_counters_until_the_collector_accumulates_them() -> None:
    counters: Counter[str] = Counter({"handled": 3})
    for seconds in (0.0, 0.001, 0.0011, 1.0, 2.0, 700.0):
        record(counters, "sandbox_run", seconds)
    last = len(DURATION_BUCKETS)
    assert counters["seconds.sandbox_run.0"] == 2  # a bound is inclusive (`le`)
    assert counters["seconds.sandbox_run.1"] == 1 and counters["seconds.sandbox_run.9"] == 1
    assert counters[f"seconds.sandbox_run.{last}"] == 1  # above every bound
    assert counters["seconds.sandbox_run.count"] == 6
    assert counters["seconds.sandbox_run.sum_us"] == 703_002_100
    [(name, d)] = durations_of(counters).items()
    assert name == "sandbox_run" and d.count == 6 and d.sum == pytest.approx(703.0021)
    cumulative = d.cumulative()
    assert cumulative[-1] == (math.inf, 6) and cumulative[0] == (0.001, 2) and cumulative[9] == (1.0, 4)
    assert [n for _, n in cumulative] == sorted(n for _, n in cumulative)
    for bad in ("Sandbox", "sandbox-run", "", "x" * 65, "task_duration", "verdict_latency"):
        with pytest.raises(ValueError):
            record(counters, bad, 1.0)
    for bad_seconds in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError):
            record(counters, "sandbox_run", bad_seconds)

    metrics = SwarmMetrics()
    metrics.heartbeat(AgentStatus(agent="sandbox", replica=1, pid=1, state=AgentState.READY, role="critic",
                                  started_at=0.0, counters=dict(counters) | {"seconds.Bad.0": 5, "seconds.x.99": 1},
                                  memory_bytes=4096))
    s = _samples(generate_latest(metrics.registry).decode())
    labels = (("agent", "sandbox"), ("replica", "1"))
    assert s[("reverie_sandbox_run_seconds_count", labels)] == 6
    assert s[("reverie_sandbox_run_seconds_sum", labels)] == pytest.approx(703.0021)
    assert s[("reverie_sandbox_run_seconds_bucket", (labels[0], ("le", "+Inf"), labels[1]))] == 6
    assert s[("reverie_sandbox_run_seconds_bucket", (labels[0], ("le", "0.001"), labels[1]))] == 2
    assert s[("reverie_sandbox_run_seconds_bucket", (labels[0], ("le", "600.0"), labels[1]))] == 5
    assert s[("reverie_memory_store_bytes", labels)] == 4096
    events = {dict(k)["event"] for (name, k) in s if name == "reverie_agent_events_total"}
    assert events == {"handled"}


def test_an_older_judged_candidate_decodes_without_latency() -> None:
    task = Task(id="t1", kind="plan", input=None)
    cand = Candidate(id="c1", task=task, round=1, index=0, steps=("a",))
    verdict = Verdict(candidate_id="c1", critic="rules", decision=Decision.ACCEPT, score=1.0)
    judged = JudgedCandidate(candidate=cand, verdicts=(verdict,), outcome=Decision.ACCEPT, latency={"rules": 0.25})
    result = Result(task_id="t1", status=ResultStatus.ACCEPTED, agent="dreamer", rounds=1, accepted=judged,
                    trace=(RoundTrace(round=1, candidates=(judged,), elapsed=0.3),))
    old = msgspec.to_builtins(result)
    for j in (old["accepted"], old["trace"][0]["candidates"][0]):
        del j["latency"]  # what a dreamer before the field wrote
    decoded = Codec(Result).decode(msgspec.msgpack.encode({**old, "v": 1}))
    assert decoded.accepted is not None and decoded.accepted.latency == {}
    assert Codec(Result).decode(encode(result)).trace[0].candidates[0].latency == {"rules": 0.25}
    status = msgspec.to_builtins(AgentStatus(agent="a", replica=0, pid=1, state=AgentState.READY, role="critic",
                                             started_at=0.0))
    del status["memory_bytes"]
    assert Codec(AgentStatus).decode(msgspec.msgpack.encode(status)).memory_bytes == 0
    assert Reply("rules", b"x").at == 0.0  # built positionally, as before
    metrics = SwarmMetrics()
    assert metrics.observe(decoded) and metrics.observe(msgspec.structs.replace(result, task_id="t2"))
    s = _samples(generate_latest(metrics.registry).decode())
    assert s[("reverie_verdict_latency_seconds_count", (("critic", "rules"),))] == 1  # the old result adds none
    assert s[("reverie_verdict_latency_seconds_bucket", (("critic", "rules"), ("le", "0.25")))] == 1
