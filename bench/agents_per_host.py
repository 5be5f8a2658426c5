"""What an idle swarm costs on one host: the memory of one agent process, the CPU of N idle agents.

Memory. The local swarm under the Supervisor (embedded nats-server with reverie's defaults: auth,
encrypted store, gossip on): one dreamer (offline reasoner), the rule, plan and budget critics and
a sandbox critic. Once ready and idle for a few heartbeats, each worker's RSS, PSS and USS
(/proc/<pid>/smaps_rollup), by kind. Baseline, same server, same moment: an idle raw nats-py
client process (connect, subscribe to one subject, sleep), measured the same way.

CPU. A swarm of N agent processes (one dreamer, N-1 critics cycling rule/plan/budget, each its
own `[[agents]]` entry, so each is a gossip peer; `--layout replicas` makes them three agents'
replicas instead), ready, then idle: CPU seconds (utime+stime, with reaped children's) of all
workers and, apart, of the nats-server over a fixed window, as % of one core and per agent; total
RSS; the supervisor (this process) on the side. Baseline, measured the same way over the same
window, on its own nats-server (sync_always, as reverie's; no auth; nothing is stored while idle):
N raw nats-py processes, each publishing a heartbeat of the size reverie's are every
`heartbeat_interval` and making `fanout` request/replies a second with random peers (the traffic of
reverie's gossip rounds). Then what the idle swarm sends on the bus, by subject. `--no-gossip` turns
gossip off (the raw processes then only publish their heartbeats).

Worker pids come from `Supervisor.processes()` (label -> pid), their kinds from the config; each
pid is checked to be a `reverie.runtime.host.worker` process, and its descendants (if any) count
with it. The nats-server's pid is `Supervisor.server.pid`.

    python bench/agents_per_host.py [--agents 100] [--window 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from reverie.runtime import EmbeddedNats, Supervisor, load_config  # noqa: E402
from reverie.runtime.bus.credentials import ADMIN, seed_for  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
WORKER = "reverie.runtime.host.worker"

DREAMER = """
[[agents]]
name = "dreamer"
kind = "dreamer"
concurrency = 64
[agents.options]
reasoner = "offline"
[agents.options.reasoner_options]
seed = 7
"""
RULES = """[agents.options]
harmful = ["force_push", "drop_database", "rm_rf"]
forbidden = ["skip_tests"]
max_steps = 12
"""
CRITICS = [("rules", "rule-critic", RULES), ("planner", "plan-critic", ""), ("budget", "budget-critic", "")]
SANDBOX = '\n[[agents]]\nname = "sandbox"\nkind = "sandbox-critic"\n'

RAW_CLIENT = """
import asyncio, random, sys, nats
url, seed, subject, name, interval, size, listen, peers, fanout = sys.argv[1:10]
async def main():
    nc = await nats.connect(url, nkeys_seed=seed or None)
    seen = {}
    async def beat(msg):
        seen[msg.subject] = asyncio.get_running_loop().time()
    async def answer(msg):
        await msg.respond(bytes(33))
    await nc.subscribe(subject if listen == "all" else subject.replace("*", name), cb=beat)
    await nc.subscribe(f"raw.gossip.{name}", cb=answer)
    await nc.flush()
    print("ready", flush=True)
    if float(interval) <= 0:
        await asyncio.Event().wait()
    payload, others = bytes(int(size)), [f"c{i}" for i in range(int(peers)) if f"c{i}" != name]
    async def gossip():  # `fanout` request/replies a second to random peers, as reverie's gossip rounds
        while int(fanout) and others:
            await asyncio.sleep(1.0)
            for peer in random.sample(others, min(int(fanout), len(others))):
                try:
                    await nc.request(f"raw.gossip.{peer}", bytes(40), timeout=2)
                except Exception:
                    pass
    asyncio.create_task(gossip())
    while True:
        await nc.publish(subject.replace("*", name), payload)
        await asyncio.sleep(float(interval))
asyncio.run(main())
"""
"""A raw nats-py process: subscribe to `subject` (`listen` "all"; else only to its own, `*`
replaced by `name`) and answer requests on `raw.gossip.<name>`; with an interval, publish `size`
bytes on its own subject every `interval` seconds and send `fanout` requests a second to random
peers among `peers` processes (reverie's idle traffic: heartbeats and gossip exchanges); else sleep."""


# ---------------------------------------------------------------------- /proc


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of `pid` and its descendants (0 for what has gone)."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # fields 14-17 of proc(5), after pid, comm, state
    return total / TICK


def memory(pid: int) -> dict[str, float]:
    """Rss, Pss and Uss (Private_Clean + Private_Dirty) in MiB, of `pid` and its descendants."""
    kib: Counter[str] = Counter()
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                        kib["Uss" if key.startswith("Private") else key] += int(rest.split()[0])
        except OSError:
            continue
    return {k: kib[k] / 1024 for k in ("Rss", "Pss", "Uss")}


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def worker_pids(sup: Supervisor) -> dict[str, tuple[str, int]]:
    """label -> (kind, pid) of every replica; each pid checked to be a running agent worker."""
    kinds = {spec.name: spec.kind for spec in sup.config.agents}
    found = {}
    for replica in sup.replicas:
        pid = sup.processes()[replica.label]
        assert pid is not None and WORKER in cmdline(pid), f"{replica.label}: no worker process (pid {pid})"
        found[replica.label] = (kinds[replica.name], pid)
    return found


@dataclass
class Usage:
    cpu: float  # seconds, over the window
    window: float
    rss: float  # MiB, at the end of the window

    def core(self) -> float:
        return 100 * self.cpu / self.window


async def measure(groups: dict[str, list[int]], window: float) -> dict[str, Usage]:
    """CPU of each group of processes over `window` seconds, and their RSS at its end."""
    before = {name: sum(map(cpu_seconds, pids)) for name, pids in groups.items()}
    began = time.monotonic()
    await asyncio.sleep(window)
    after = {name: sum(map(cpu_seconds, pids)) for name, pids in groups.items()}
    elapsed = time.monotonic() - began
    return {name: Usage(after[name] - before[name], elapsed, sum(memory(p)["Rss"] for p in pids))
            for name, pids in groups.items()}


# ---------------------------------------------------------------------- swarms


def swarm_toml(agents: int, layout: str, *, sandbox: bool = False, gossip: bool = True) -> str:
    """One dreamer and `agents - 1` critics cycling rule/plan/budget (and a sandbox critic)."""
    text = f'swarm = "idle"\n[gossip]\nenabled = {str(gossip).lower()}\n[nats]\nurl = "embedded"\n' + DREAMER
    critics = agents - 1 - sandbox
    for i, (name, kind, options) in enumerate(CRITICS):
        count = critics // 3 + (i < critics % 3)
        if layout == "replicas" and count:
            text += f'\n[[agents]]\nname = "{name}"\nkind = "{kind}"\nreplicas = {count}\n{options}'
        elif layout == "agents":
            for j in range(count):
                text += f'\n[[agents]]\nname = "{name}{j if count > 1 else ""}"\nkind = "{kind}"\n{options}'
    return text + (SANDBOX if sandbox else "")


@contextlib.asynccontextmanager
async def swarm(tmp: Path, text: str, ready_timeout: float) -> AsyncIterator[tuple[Supervisor, float]]:
    """The swarm of `text` under a Supervisor (log in `tmp`), ready; and how long that took."""
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    (tmp / "swarm.toml").write_text(text)
    config = load_config(tmp / "swarm.toml", data_dir=tmp / "data")
    with await asyncio.to_thread(open, tmp / "swarm.log", "w") as log:
        began = time.monotonic()
        async with Supervisor(config, out=log, ready_timeout=ready_timeout) as sup:
            yield sup, time.monotonic() - began


@contextlib.asynccontextmanager
async def raw_clients(n: int, url: str, seed: Path | None, subject: str, interval: float = 0.0, size: int = 0,
                      listen: str = "own", fanout: int = 0) -> AsyncIterator[tuple[list[int], float]]:
    """`n` raw nats-py processes (`RAW_CLIENT`), each ready (subscribed); and how long that took."""
    began = time.monotonic()
    procs: list[asyncio.subprocess.Process] = []
    try:
        for i in range(n):
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, "-c", RAW_CLIENT, url, str(seed or ""), subject, f"c{i}", str(interval), str(size),
                listen, str(n), str(fanout), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE))
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line.strip() == b"ready", f"raw client {proc.pid} did not start: {line!r}"
        yield [p.pid for p in procs], time.monotonic() - began
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await asyncio.gather(*(p.wait() for p in procs))


async def traffic(url: str, seed: Path | None, seconds: float) -> Counter[tuple[str, str]]:
    """Messages and bytes published on the server in `seconds`, by kind of subject."""
    seen: Counter[tuple[str, str]] = Counter()

    async def count(msg: Any) -> None:
        parts = msg.subject.split(".")
        if parts[0] == "rv":  # rv.<swarm>.<what>.<agent|user|...>
            kind = ".".join(parts[2:4] if parts[2] in ("ctl", "events") else parts[2:3])
        elif parts[0] == "$JS":  # $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>, $JS.ACK.<stream>...
            kind = ".".join(parts[:4] if parts[1] == "API" else parts[:2])
        else:
            kind = parts[0]
        seen[kind, "msgs"] += 1
        seen[kind, "bytes"] += len(msg.data)

    nc = await nats.connect(url, nkeys_seed=str(seed) if seed else None)
    try:
        await nc.subscribe(">", cb=count)
        await nc.flush()
        await asyncio.sleep(seconds)
    finally:
        await nc.close()
    return seen


# ---------------------------------------------------------------------- 1. memory


async def memory_per_kind(tmp: Path, settle: float) -> None:
    print("\n## resident memory of one idle agent process (MiB; RSS counts shared pages in full, "
          "PSS shares them out, USS is the process's own)")
    async with swarm(tmp, swarm_toml(5, "agents", sandbox=True), 120.0) as (sup, _):
        assert sup.server is not None and sup.server.pid is not None
        seed = seed_for(sup.config, ADMIN)
        async with raw_clients(1, sup.url, seed, "raw.idle") as (raw, _):
            await asyncio.sleep(max(settle, 4 * sup.config.heartbeat_interval))
            base = memory(raw[0])
            rows = [(kind, memory(pid)) for kind, pid in worker_pids(sup).values()]
            server = memory(sup.server.pid)
    print(f"{'raw nats-py client':>20}: RSS {base['Rss']:6.1f}  PSS {base['Pss']:6.1f}  USS {base['Uss']:6.1f}")
    for kind, m in rows:
        print(f"{kind:>20}: RSS {m['Rss']:6.1f}  PSS {m['Pss']:6.1f}  USS {m['Uss']:6.1f} | "
              f"ratio RSS {m['Rss'] / base['Rss']:.2f}x  USS {m['Uss'] / base['Uss']:.2f}x")
    print(f"{'nats-server':>20}: RSS {server['Rss']:6.1f}  (the swarm's; for reference)")


# ---------------------------------------------------------------------- 2. CPU


def usage_line(label: str, n: int, workers: Usage, server: Usage) -> str:
    return (f"{label:>8}: workers {workers.core():6.2f}% of a core ({workers.core() / n:.3f}% per agent, "
            f"{1000 * workers.cpu / n / workers.window:.2f} ms/s) | nats-server {server.core():6.2f}% | "
            f"RSS workers {workers.rss:7.0f} MiB ({workers.rss / n:.1f} per agent), server {server.rss:5.0f} MiB")


async def ours_idle(n: int, layout: str, gossip: bool, window: float, settle: float,
                    tmp: Path) -> tuple[Usage, Usage, int]:
    """Returns the workers' and the server's usage, and the mean heartbeat size."""
    async with swarm(tmp, swarm_toml(n, layout, gossip=gossip), max(120.0, 6.0 * n)) as (sup, ready):
        assert sup.server is not None and sup.server.pid is not None
        print(f"reverie: {n} agent processes ready in {ready:.1f} s (Supervisor start to ready, "
              f"nats-server and keys included); idle {settle:g} s before measuring", flush=True)
        await asyncio.sleep(settle)
        pids = worker_pids(sup)
        extra = sum(len(descendants(pid)) - 1 for _, pid in pids.values())
        by_kind: dict[str, list[int]] = {}
        for kind, pid in pids.values():
            by_kind.setdefault(kind, []).append(pid)
        me = os.times()
        use = await measure({**by_kind, "server": [sup.server.pid]}, window)
        me_cpu = os.times().user + os.times().system - me.user - me.system
        restarted = [label for label, (_, pid) in pids.items() if sup.processes()[label] != pid]
        if restarted or extra:
            print(f"reverie: {len(restarted)} workers restarted during the window {restarted[:5]}; "
                  f"{extra} processes below the workers")
        for kind, group in by_kind.items():
            u = use[kind]
            print(f"reverie: {kind:>14} x{len(group):<3} {u.core() / len(group):.3f}% of a core each, "
                  f"RSS {u.rss / len(group):.1f} MiB each")
        print(f"reverie: the supervisor (this process) used {100 * me_cpu / use['server'].window:.2f}% of a core")
        workers = Usage(sum(use[k].cpu for k in by_kind), use["server"].window, sum(use[k].rss for k in by_kind))
        sample = min(window, 10.0)
        seen = await traffic(sup.url, seed_for(sup.config, ADMIN), sample)
    hb = "ctl.heartbeat"
    size = seen[hb, "bytes"] // max(seen[hb, "msgs"], 1)
    print(f"\n## what the idle reverie swarm of {n} publishes ({sample:g} s, one subscriber to '>')")
    for kind in sorted({k for k, _ in seen}, key=lambda k: -seen[k, "bytes"]):
        msgs, size_of = seen[kind, "msgs"], seen[kind, "bytes"]
        print(f"{kind:>32}: {msgs / sample:8.1f} msg/s {size_of / sample / 1024:8.1f} KiB/s "
              f"(mean {size_of // max(msgs, 1)} B)")
    if gossip:
        print("(nobody but the supervisor's metrics listens to heartbeats; a gossip exchange is a request and "
              "its reply)")
    print()
    return workers, use["server"], size


async def raw_idle(n: int, fanout: int, window: float, settle: float, interval: float, size: int,
                   tmp: Path) -> tuple[Usage, Usage]:
    server = EmbeddedNats(tmp / "raw")  # fsyncs JetStream writes, as reverie's; no auth, nothing stored
    async with server, raw_clients(n, server.url, None, "raw.heartbeat.*", interval, size, "own",
                                   fanout) as (pids, ready):
        assert server.pid is not None
        print(f"raw: {n} nats-py processes ready in {ready:.1f} s; idle {settle:g} s before measuring", flush=True)
        await asyncio.sleep(settle)
        use = await measure({"workers": pids, "server": [server.pid]}, window)
    return use["workers"], use["server"]


async def main(agents: int, window: float, layout: str, gossip: bool, settle: float) -> None:
    print(f"# idle swarm on one host: {agents} agents, {window:g} s window; {machine()}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        await memory_per_kind(Path(tmp) / "memory", settle)
        ours_tmp = Path(tmp) / "cpu"
        print(f"## CPU of {agents} idle agent processes ({layout} layout, gossip {'on' if gossip else 'off'})")
        workers, server, size = await ours_idle(agents, layout, gossip, window, settle, ours_tmp)
        interval = load_config(ours_tmp / "swarm.toml").heartbeat_interval
        fanout = load_config(ours_tmp / "swarm.toml").gossip.fanout if gossip else 0
        print(f"raw baseline: {agents} processes, each publishing {size} B every {interval:g} s and making {fanout} "
              "request/replies a second with random peers")
        raw_workers, raw_server = await raw_idle(agents, fanout, window, settle, interval, size, ours_tmp)
    print(usage_line("raw", agents, raw_workers, raw_server))
    print(usage_line("reverie", agents, workers, server))
    print(f"{'ratio':>8}: workers CPU {workers.cpu / max(raw_workers.cpu, 1 / TICK):.2f}x | nats-server CPU "
          f"{server.cpu / max(raw_server.cpu, 1 / TICK):.2f}x | workers RSS {workers.rss / raw_workers.rss:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=100, help="agent processes in the CPU swarm (at least 4)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of idle measured")
    parser.add_argument("--layout", choices=("agents", "replicas"), default="agents",
                        help="critics as distinct [[agents]] (each a gossip peer) or as replicas of three")
    parser.add_argument("--no-gossip", dest="gossip", action="store_false",
                        help="gossip off in the CPU swarm (agents then do not listen to each other's heartbeats)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds idle after ready, before measuring")
    args = parser.parse_args()
    assert args.agents >= 4, "--agents: at least 4 (a dreamer and the three critics)"
    asyncio.run(main(args.agents, args.window, args.layout, args.gossip, args.settle))
