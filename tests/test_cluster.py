"""A swarm on a 3-node NATS cluster: R3 streams, agents spread over three "hosts" (three
supervisors, each running its share with `--only`), and a node SIGKILLed while 500 tasks run
(the task stream leader's, then another's), then restarted: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import nats.errors
import pytest
from nats.aio.msg import Msg

from reverie.protocol import ResultStatus, Task
from reverie.runtime import (
    NoSuchAgent,
    OptionError,
    ReplicasUnavailable,
    Supervisor,
    connect,
    find_nats_server,
    load_config,
    parse_config,
)
from reverie.runtime.swarm import Placement

from .cluster import Cluster, running_cluster
from .conftest import ROOT, eventually, load_task, run_cli

TASKS = 500

SWARM = """
swarm = "cluster"
heartbeat_interval = 1.0
[streams]
replicas = 3
creator = "host0"

[[agents]]
name = "dreamer"
kind = "dreamer"
replicas = 2
concurrency = 64
[agents.options]
candidates_per_round = 3
max_rounds = 5
max_seconds = 120
verdict_timeout = 5.0
[agents.options.reasoner_options]
seed = 7

[[agents]]
name = "rules"
kind = "rule-critic"
replicas = 3
[agents.options]
harmful = ["force_push", "drop_database", "rm_rf"]
forbidden = ["skip_tests"]
max_steps = 12

[[agents]]
name = "planner"
kind = "plan-critic"
replicas = 3

[[agents]]
name = "budget"
kind = "budget-critic"
replicas = 3
"""

SHARES = [  # host i runs these replicas, on node i first
    "dreamer.0,rules.0,planner.0,budget.0",
    "dreamer.1,rules.1,planner.1,budget.1",
    "rules.2,planner.2,budget.2",
]


def _servers(cluster: Cluster, i: int) -> list[str]:
    """Host i's servers: its own node first, then the others."""
    return [cluster.urls[i], *(u for j, u in enumerate(cluster.urls) if j != i)]


class Arrivals:
    """Every result published on the bus, with when it arrived (a raw subscription)."""

    def __init__(self) -> None:
        self.at: list[tuple[float, str]] = []
        self.changed = asyncio.Event()

    async def on(self, msg: Msg) -> None:
        self.at.append((time.monotonic(), msg.subject.rpartition(".")[2]))
        self.changed.set()

    def ids(self) -> set[str]:
        return {task_id for _, task_id in self.at}

    async def until(self, count: int, timeout: float = 120.0) -> None:  # noqa: ASYNC109 - a test's deadline
        async with asyncio.timeout(timeout):
            while len(self.ids()) < count:
                self.changed.clear()
                await self.changed.wait()


async def _stored_after(swarm: Any, killed: float, before: int, timeout: float = 60.0) -> float:  # noqa: ASYNC109 - a test's deadline
    """Seconds from `killed` until the results stream stores a result past sequence `before`
    (polled: during an election the stream answers nothing, which is what this measures)."""
    stream, js = swarm.bus.subjects.results_stream, swarm.bus.nc.jetstream(timeout=0.2)
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                info = await js.stream_info(stream)
                if info.state.last_seq > before:
                    return time.monotonic() - killed
            await asyncio.sleep(0.02)


async def _last_seq(swarm: Any) -> int:
    return int((await swarm.bus.js.stream_info(swarm.bus.subjects.results_stream)).state.last_seq)


async def _leader(swarm: Any, stream: str) -> str:
    async def ask() -> str | None:
        info = await swarm.bus.js.stream_info(stream)
        return info.cluster.leader if info.cluster and info.cluster.leader else None

    return await eventually(ask, timeout=30, what=f"a leader of {stream}")


async def test_nodes_die_under_500_tasks_and_nothing_is_lost_or_doubled(tmp_path: Path) -> None:
    spec = load_task("db-migration")
    async with running_cluster(SWARM, tmp_path) as (cluster, config), contextlib.AsyncExitStack() as stack:
        log = stack.enter_context((tmp_path / "swarm.log").open("w"))
        hosts = [Placement.parse(config, share, host=f"host{i}") for i, share in enumerate(SHARES)]
        # host0 creates the streams; the others would wait for them
        sups = [await stack.enter_async_context(
            Supervisor(config, out=log, placement=p, servers=_servers(cluster, i), ready_timeout=120))
            for i, p in enumerate(hosts)]
        assert [len(s.replicas) for s in sups] == [4, 4, 3]
        swarm = await stack.enter_async_context(connect(config))
        tasks_stream, results_stream = swarm.bus.subjects.tasks_stream, swarm.bus.subjects.results_stream
        info = await swarm.bus.js.stream_info(tasks_stream)
        assert info.config.num_replicas == 3 and len(info.cluster.replicas or []) == 2  # a leader and 2 followers

        status = await swarm.status(timeout=3.0)  # each agent says where it runs
        where = {(a.agent, a.replica): (a.host, a.node) for a in status.agents}
        assert where[("dreamer", 0)] == ("host0", "n0") and where[("dreamer", 1)] == ("host1", "n1")
        assert {where[("rules", i)][1] for i in range(3)} == {"n0", "n1", "n2"}

        arrivals = Arrivals()
        await swarm.bus.nc.subscribe(swarm.bus.subjects.all_results, cb=arrivals.on)
        batch = [Task(id=f"c{i:03d}", kind="plan", input=spec) for i in range(TASKS)]
        running = asyncio.create_task(swarm.submit_many(batch, timeout=600))

        failovers: list[float] = []
        await arrivals.until(100)
        first = cluster.index(await _leader(swarm, tasks_stream))  # the task stream leader's node
        before, killed = await _last_seq(swarm), time.monotonic()
        await cluster.kill(first)
        failovers.append(await _stored_after(swarm, killed, before))
        await cluster.restart(first)

        await arrivals.until(250)
        second = next(i for i in (cluster.index(await _leader(swarm, results_stream)), (first + 1) % 3)
                      if i != first)  # the results leader's node, unless it is the one killed before
        before, killed = await _last_seq(swarm), time.monotonic()
        await cluster.kill(second)
        failovers.append(await _stored_after(swarm, killed, before))
        await cluster.restart(second)

        results = await running
        print(f"kill to the next stored result: {', '.join(f'{s:.2f}s' for s in failovers)}")

        assert [r.task_id for r in results] == [t.id for t in batch]  # 0 lost: every task has its result
        assert all(r.status is ResultStatus.ACCEPTED for r in results), {r.status for r in results}

        async def settled() -> tuple[int, int, int] | None:
            t, r = await swarm.bus.js.stream_info(tasks_stream), await swarm.bus.js.stream_info(results_stream)
            return (t.state.messages, r.state.messages, r.state.last_seq) if t.state.messages == 0 else None

        queued, stored, last_seq = await eventually(settled, timeout=60, what="an empty task queue")
        assert (queued, stored) == (0, TASKS)
        assert last_seq == TASKS  # no result was stored twice (each store is one sequence number)
        assert all(s < 30 for s in failovers), failovers


async def test_more_replicas_than_servers_is_a_clear_error(tmp_path: Path, nats_url: str) -> None:
    config = parse_config(f'swarm = "r3"\n[nats]\nurl = "{nats_url}"\n[streams]\nreplicas = 3\n'
                          '[[agents]]\nname = "d"\nkind = "dreamer"\n', source="<t>", data_dir=tmp_path)
    with pytest.raises(ReplicasUnavailable, match=r"replicas to at most the number of JetStream servers"):
        async with connect(config):
            pass


def test_the_cluster_deploy_files_are_valid(tmp_path: Path) -> None:
    """deploy/cluster as the README sets it up: seeds and authorization from `reverie keys ...
    nats-config`, each node's certificate from `server-cert`; nats-server accepts every node's config."""
    shutil.copytree(ROOT / "deploy" / "cluster", tmp_path, dirs_exist_ok=True)
    swarm = tmp_path / "swarm.toml"
    swarm.write_text(swarm.read_text().replace("/var/lib/reverie", str(tmp_path / "data"))
                     .replace("/etc/reverie/nkeys", str(tmp_path / "nkeys"))
                     .replace("/etc/reverie/certs", str(tmp_path / "certs")))
    config = load_config(swarm)
    assert (config.streams.replicas, config.streams.creator) == (3, "host-1")
    made = run_cli("keys", str(swarm), "nats-config")
    assert made.returncode == 0, made.stderr
    (tmp_path / "authorization.conf").write_text(made.stdout)
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in (tmp_path / "nkeys").glob("*.nk"))
    (tmp_path / "certs").mkdir()
    for i in (1, 2, 3):
        cert = run_cli("keys", str(swarm), "--json", "server-cert", f"nats-{i}", "--host", f"nats-{i}.internal")
        assert cert.returncode == 0, cert.stderr
        files = json.loads(cert.stdout)
        for part in ("ca", "cert", "key"):
            shutil.copy(files[part], tmp_path / "certs" / Path(files[part]).name)
        conf = tmp_path / f"nats-{i}.conf"
        conf.write_text(conf.read_text().replace("/var/lib/nats/jetstream", str(tmp_path / f"js-{i}")))
        checked = subprocess.run([find_nats_server(), "-t", "-c", str(conf)], capture_output=True, text=True,
                                 cwd=tmp_path, timeout=30)
        assert checked.returncode == 0, checked.stderr + checked.stdout
        assert "is valid" in checked.stderr + checked.stdout


def test_only_names_agents_or_replicas_of_the_config(tmp_path: Path) -> None:
    config = parse_config(SWARM, source="<t>", data_dir=tmp_path)
    assert Placement.parse(config, None, host="h").only is None  # every replica
    share = Placement.parse(config, "dreamer.1, rules", host="h")
    assert share.only == {("dreamer", 1), ("rules", 0), ("rules", 1), ("rules", 2)}
    assert share.runs("dreamer", 1) and not share.runs("dreamer", 0) and not share.runs("planner", 0)
    assert Placement(host="host0").creates_streams(config) and not Placement(host="host1").creates_streams(config)
    with pytest.raises(NoSuchAgent, match="no agent named 'critic'"):
        Placement.parse(config, "critic", host="h")
    with pytest.raises(OptionError, match=r"dreamer has 2 replica\(s\): dreamer.2 is not one of them"):
        Placement.parse(config, "dreamer.2", host="h")
    with pytest.raises(OptionError, match="names no agent"):
        Placement.parse(config, " , ", host="h")
    bad = run_cli("up", str(ROOT / "deploy" / "cluster" / "swarm.toml"), "--only", "nobody")
    assert bad.returncode == 2 and "no agent named 'nobody'" in bad.stderr, bad.stderr
