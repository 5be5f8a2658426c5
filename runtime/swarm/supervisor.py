"""`reverie up`: start NATS (if embedded), one OS process per agent replica, restart on crash."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import TextIO

from nats.aio.msg import Msg

from reverie.protocol import AgentState, Codec, Lifecycle, ProtocolError

from ..bus.bus import Bus
from ..bus.credentials import ADMIN, connect_bus, ensure_users
from ..bus.taskctl import TaskControl
from ..config import SwarmConfig
from ..errors import AgentsNotReady, AgentStartFailed, ReverieError, SwarmAlreadyRunning
from ..gossip.provision import ensure_keys
from ..logs import LogFormat, json_line
from ..metrics import MetricsServer
from ..process import stop_pid
from ..tracing import check_tracing
from .embedded import EmbeddedNats
from .jskey import ensure_jetstream_key, mark_encrypted
from .permissions import authorization_block
from .placement import HOST_ENV, Placement, host_name
from .state import SwarmState, clear_state, orphaned_server, read_state, write_state
from .tls import ensure_server_cert

__all__ = ["LAST_WORDS", "STABLE_AFTER", "START_ATTEMPTS", "Supervisor"]

STABLE_AFTER = 10.0
"""A replica that ran this long before crashing restarts from the first backoff step again."""
START_ATTEMPTS = 3
"""A replica that exits this many times before it was ever ready fails `reverie up` with its
own last words: a crash at start (a bad option, a missing module) does not heal by waiting."""
LAST_WORDS = 12


class _Replica:
    """One agent replica's OS process, restarted with backoff while the swarm runs."""

    def __init__(self, sup: Supervisor, name: str, index: int, label: str) -> None:
        self.sup = sup
        self.name = name
        self.index = index
        self.label = label
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.ready_pid: int | None = None
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_words: deque[str] = deque(maxlen=LAST_WORDS)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.returncode is None else None

    async def run(self) -> None:
        failures = 0
        while not self.sup.stopping:
            began = time.monotonic()
            self.proc = await asyncio.create_subprocess_exec(
                *self.sup.worker_command(self.name, self.index), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                env=self.sup.child_env, start_new_session=True,
            )
            pump = asyncio.create_task(self._pump(self.proc))
            code = await self.proc.wait()
            await pump
            if self.sup.stopping:
                return
            failures = 0 if time.monotonic() - began > STABLE_AFTER else failures + 1
            if not self.ready.is_set() and failures >= START_ATTEMPTS:
                words = "\n".join(f"  {line}" for line in self.last_words) or "  (it printed nothing)"
                self.sup.start_failed(f"{self.label} exited {failures} times before it was ready (last exit code "
                                      f"{code}); its last output:\n{words}")
                return
            config = self.sup.config
            delay = min(config.restart_backoff * 2 ** max(failures - 1, 0), config.restart_backoff_max)
            self.sup.say(f"{self.label} exited with code {code}; restarting in {delay:g}s")
            self.restarts += 1
            try:
                await asyncio.wait_for(self.sup.stopped.wait(), delay)
            except TimeoutError:
                pass

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            text = line.decode(errors='replace').rstrip()
            self.last_words.append(text)
            self.sup.relay(self.label, text)


class Supervisor:
    """Runs a swarm. `async with Supervisor(config) as sup:` returns once every replica is ready."""

    def __init__(self, config: SwarmConfig, *, out: TextIO | None = None, log_format: LogFormat = "text",
                 metrics_port: int | None = None, ready_timeout: float = 60.0, health_interval: float = 5.0,
                 health_failures: int = 3, placement: Placement | None = None,
                 servers: list[str] | None = None) -> None:
        self.config = config
        self.placement = placement or Placement(host_name())
        """The replicas this host runs (`reverie up --only`), and whether it makes the streams."""
        self.servers = servers
        """This host's NATS servers, tried in order (`reverie up --nats`); None: the config's, shuffled."""
        self.out = out or sys.stdout
        self.log_format = log_format
        self.metrics_port = metrics_port if metrics_port is not None else config.metrics.port
        """Serve Prometheus' /metrics for the whole swarm on this port (0: any free one); the
        argument (`reverie up --metrics-port`) wins over the config's `[metrics] port`."""
        self.metrics: MetricsServer | None = None
        """`json`: every line on `out` is a JSON object (agents' log lines get `agent`)."""
        self.ready_timeout = ready_timeout
        self.health_interval = health_interval
        self.health_failures = health_failures
        """The embedded server is restarted when this many JetStream round trips in a row, one per
        `health_interval`, fail while its process lives (hung, or JetStream disabled by a full disk)."""
        self.stopping = False
        self.stopped = asyncio.Event()
        self.url = ""
        self.server: EmbeddedNats | None = None
        self.bus: Bus | None = None
        self.replicas: list[_Replica] = []
        self._exits = contextlib.AsyncExitStack()
        """What `start` acquired, released in reverse by `stop` (or by `start` when it fails)."""
        self._start_failure: asyncio.Future[str] | None = None
        data = config.data_path
        config_dir = str(Path(config.source).resolve().parent) if Path(config.source).exists() else ""
        path = [p for p in (config_dir, os.getcwd(), os.environ.get("PYTHONPATH", "")) if p]
        self.child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONUNBUFFERED": "1",
                          HOST_ENV: self.placement.host}
        self.data = data

    # ------------------------------------------------------------------ output

    def emit(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def say(self, line: str, **fields: object) -> None:
        """A line of the supervisor's own; with JSON logs, an object (`fields` added)."""
        if self.log_format == "json":
            self.emit(json_line("INFO", "reverie.supervisor", line, fields))
        else:
            self.emit(f"reverie: {line}")

    def relay(self, label: str, text: str) -> None:
        """An agent's output line, named: prefixed (text), or with `agent` added (a JSON log line)."""
        if self.log_format == "json":
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if not isinstance(record, dict):  # a print or a traceback: wrapped so every line stays JSON
                record = json.loads(json_line("INFO", "reverie.agent.output", text))
            self.emit(json.dumps({**record, "agent": label}, ensure_ascii=False))
        else:
            self.emit(f"{label} | {text}")

    def worker_command(self, name: str, index: int) -> list[str]:
        return [sys.executable, "-m", "reverie.runtime.host.worker", "--config", self.config.source,
                "--agent", name, "--replica", str(index), "--nats", self.url,
                "--data-dir", str(self.data), *(["--in-order"] if self.servers else [])]

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server (if embedded) and every replica; return once all are ready. A start
        that fails releases what it had acquired: the supervisor is then stopped."""
        try:
            await self._start(self._exits)
        except BaseException:
            self._begin_stopping()
            await self._exits.aclose()
            raise

    async def _start(self, exits: contextlib.AsyncExitStack) -> None:
        check_tracing(self.config)  # before any process: every worker would fail the same way
        self.data.mkdir(parents=True, exist_ok=True)
        if self.config.gossip.enabled:
            created = ensure_keys(self.config)
            if created:
                self.say(f"created gossip keys and certificates for {', '.join(created)} in {self.data / 'keys'}")
        nats = self.config.nats
        if nats.embedded:
            running = read_state(self.data)
            if running is not None:
                raise SwarmAlreadyRunning(running.swarm, self.data, running.pid)
            orphan = orphaned_server(self.data)
            if orphan is not None:  # its supervisor was killed; its workers have stopped by themselves
                self.say(f"stopping the nats-server (pid {orphan}) a killed supervisor left running")
                await stop_pid(orphan)
            authorization = authorization_block(self.config, ensure_users(self.config)) if nats.auth else None
            tls = ensure_server_cert(self.config, [nats.host]) if nats.tls else None
            store = self.data / "nats"
            key = ensure_jetstream_key(self.data / "keys" / "nats", store) if nats.encrypt else None
            self.server = EmbeddedNats(store, binary=nats.server, host=nats.host, port=nats.port,
                                       sync_always=nats.sync_always, authorization=authorization, tls=tls,
                                       encryption_key=key)
            self.url = await self.server.start()
            exits.push_async_callback(self._stop_server, self.server)
            if key is not None:
                mark_encrypted(store)
            watch = asyncio.create_task(self._watch_server(self.server), name="nats-server")
            exits.push_async_callback(_cancel, watch)
            write_state(self.data, SwarmState(swarm=self.config.swarm, url=self.url, pid=os.getpid(),
                                              started_at=time.time(), server_pid=self.server.pid))
        else:
            self.url = ",".join(self.servers or nats.servers)
        servers = self.url.split(",")
        self.bus = await connect_bus(self.config, ADMIN, servers, name=f"{self.config.swarm}.supervisor",
                                     randomize=not self.servers)
        exits.push_async_callback(self.bus.close)
        # as `_admin`, before any agent starts: agents and clients may only look these up
        creates = self.placement.creates_streams(self.config)
        if not creates:
            self.say(f"waiting for the streams of host {self.config.streams.creator!r}")
        await self.bus.ensure_streams(self.config.streams, create=creates)
        await TaskControl.open(self.bus, replicas=self.config.streams.replicas)
        await self.bus.nc.subscribe(self.bus.subjects.rel("events.agent.*"), cb=self._on_event)
        if self.metrics_port is not None:
            host = self.config.metrics.host
            self.metrics = await exits.enter_async_context(MetricsServer(self.bus, self.metrics_port, host))
            self.say(f"metrics on http://{host}:{self.metrics.port}/metrics", event="metrics",
                     port=self.metrics.port)
        await self.bus.nc.flush()
        exits.push_async_callback(self._stop_replicas)
        for spec in self.config.agents:
            for i in (i for i in range(spec.replicas) if self.placement.runs(spec.name, i)):
                label = spec.name if spec.replicas == 1 else f"{spec.name}.{i}"
                replica = _Replica(self, spec.name, i, label)
                replica.task = asyncio.create_task(replica.run(), name=f"replica:{label}")
                self.replicas.append(replica)
        failure = self._start_failure = asyncio.get_running_loop().create_future()
        waiting = [asyncio.create_task(r.ready.wait()) for r in self.replicas]
        everyone = asyncio.ensure_future(asyncio.gather(*waiting))
        await asyncio.wait([everyone, failure], timeout=self.ready_timeout, return_when=asyncio.FIRST_COMPLETED)
        everyone.cancel()
        await asyncio.gather(everyone, return_exceptions=True)
        if failure.done():
            raise AgentStartFailed(failure.result())
        failure.cancel()
        if not all(r.ready.is_set() for r in self.replicas):
            raise AgentsNotReady([r.label for r in self.replicas if not r.ready.is_set()], self.ready_timeout)
        where = f"data in {self.data}"
        self.say(f"swarm {self.config.swarm!r} ready: {len(self.replicas)} agent processes on "
                 f"{self.url} ({where})", event="ready", swarm=self.config.swarm, agents=len(self.replicas),
                 url=self.url, data_dir=str(self.data))

    def start_failed(self, why: str) -> None:
        """A replica cannot start: `start` stops waiting and fails with `why`."""
        if self._start_failure is not None and not self._start_failure.done():
            self._start_failure.set_result(why)

    async def _watch_server(self, server: EmbeddedNats) -> None:
        """Restart the embedded server on the same address if it dies or stops answering
        JetStream; agents reconnect by themselves and JetStream's file store brings back every
        queued task and result."""
        delay = self.config.restart_backoff
        while not self.stopping:
            why = await self._until_unhealthy(server)
            if self.stopping:
                return
            if server.running:
                await server.stop(timeout=2.0)  # a hung server may not heed SIGTERM: killed after 2 s
            self.say(f"nats-server {why}; restarting on {self.url}")
            try:
                await server.start()
            except ReverieError as exc:
                self.say(f"nats-server restart failed: {exc}; retrying in {delay:g}s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.restart_backoff_max)
                continue
            delay = self.config.restart_backoff
            write_state(self.data, SwarmState(swarm=self.config.swarm, url=self.url, pid=os.getpid(),
                                              started_at=time.time(), server_pid=server.pid))
            self.say(f"nats-server back on {self.url}")

    async def _until_unhealthy(self, server: EmbeddedNats) -> str:
        """Why the server needs a restart: it exited, or its JetStream API stopped answering
        (a live pid is not a working server: a full disk disables JetStream and leaves it so)."""
        exited = asyncio.ensure_future(server.wait_exit())
        failures = 0
        try:
            while True:
                done, _ = await asyncio.wait([exited], timeout=self.health_interval)
                if done:
                    return f"exited with code {exited.result()}"
                if self.stopping:
                    return "stopping"
                failures = 0 if await self._jetstream_answers() else failures + 1
                if failures >= self.health_failures:
                    return f"did not answer {failures} JetStream health checks in a row (pid {server.pid} alive)"
        finally:
            exited.cancel()

    async def _jetstream_answers(self) -> bool:
        if self.bus is None:
            return True  # not connected yet: `start` is still running
        try:
            await asyncio.wait_for(self.bus.js.account_info(), timeout=max(self.health_interval, 1.0))
        except Exception:
            return False
        return True

    _codec: Codec[Lifecycle] = Codec(Lifecycle)

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = self._codec.decode(msg.data)
        except ProtocolError:
            return
        for r in self.replicas:
            if r.name == event.agent and r.index == event.replica:
                if event.state is AgentState.READY and event.pid == r.pid:
                    r.ready_pid = event.pid
                    if r.ready.is_set() and r.restarts:
                        self.say(f"{r.label} ready again (pid {event.pid}, restart {r.restarts})")
                    r.ready.set()

    async def stop(self) -> None:
        """SIGTERM every replica (they drain), SIGKILL what is left after the grace period; then
        close the bus and stop the embedded server."""
        if self.stopping:
            return
        self._begin_stopping()
        await self._exits.aclose()

    def _begin_stopping(self) -> None:
        self.stopping = True  # replicas are not restarted, the server is not watched any more
        self.stopped.set()

    async def _stop_replicas(self) -> None:
        procs = [r.proc for r in self.replicas if r.proc is not None and r.proc.returncode is None]
        for proc in procs:
            _signal(proc, signal.SIGTERM)
        if procs:
            waits = [asyncio.create_task(p.wait()) for p in procs]
            await asyncio.wait(waits, timeout=self.config.shutdown_grace + 2.0)
            for proc in procs:
                if proc.returncode is None:
                    _signal(proc, signal.SIGKILL)
            await asyncio.gather(*waits, return_exceptions=True)
        tasks = [r.task for r in self.replicas if r.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop_server(self, server: EmbeddedNats) -> None:
        await server.stop()
        clear_state(self.data)

    def processes(self) -> dict[str, int | None]:
        """Current pid of each replica, by label."""
        return {r.label: r.pid for r in self.replicas}


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _signal(proc: asyncio.subprocess.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
