"""The per-run directory on the host that the sandbox sees parts of, read-only: the generated
`sitecustomize.py` and the report FIFO (see `audit`), a minimal /etc (passwd, group, hosts,
nsswitch.conf), and a private tmp for runs without isolation."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOSTNAME", "Staging", "etc_files"]

HOSTNAME = "sandbox"


def etc_files(uid: int, gid: int) -> dict[str, str]:
    """A minimal /etc: the sandbox user has a name, lookups never leave /etc/hosts."""
    users = [("root", 0, 0, "/root"), ("nobody", 65534, 65534, "/nonexistent")]
    if uid not in (0, 65534):
        users.insert(1, ("sandbox", uid, gid, "/tmp"))
    groups = {0: "root", 65534: "nogroup"} | ({} if gid in (0, 65534) else {gid: "sandbox"})
    return {
        "passwd": "".join(f"{n}:x:{u}:{g}:{n}:{h}:/usr/sbin/nologin\n" for n, u, g, h in users),
        "group": "".join(f"{n}:x:{g}:\n" for g, n in groups.items()),
        "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{HOSTNAME}\n",
        "nsswitch.conf": "".join(f"{db}: files\n" for db in
                                 ("passwd", "group", "shadow", "hosts", "networks", "protocols", "services")),
    }


@dataclass(frozen=True)
class Staging:
    root: Path

    @property
    def hook_dir(self) -> Path:
        return self.root / "hook"

    @property
    def fifo(self) -> Path:
        """Where the sandbox reports violations: mode 0222, write-only for everyone."""
        return self.hook_dir / "report"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def tmp(self) -> Path:
        """HOME and TMPDIR of a run without isolation (0700, the caller's)."""
        return self.root / "tmp"

    @classmethod
    def create(cls, *, uid: int, gid: int) -> Staging:
        root = Path(tempfile.mkdtemp(prefix="reverie-sandbox-"))
        try:
            staging = cls(root)  # 0700: bwrap binds as root (or as the owner); nobody else gets in
            for sub in (staging.hook_dir, staging.etc):
                sub.mkdir()
                sub.chmod(0o755)
            staging.tmp.mkdir(mode=0o700)
            for name, text in etc_files(uid, gid).items():
                (staging.etc / name).write_text(text)
                (staging.etc / name).chmod(0o644)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return staging

    def write_hook(self, source: str) -> None:
        path = self.hook_dir / "sitecustomize.py"
        path.write_text(source)
        path.chmod(0o644)

    def open_reports(self) -> tuple[int, int]:
        """Make the FIFO; its read end, and a write end the caller holds so that the reader
        sees no end of file before the run is over (both non-blocking, close-on-exec). Opened
        before the FIFO becomes write-only: as its owner, this process could not read it after."""
        os.mkfifo(self.fifo, 0o600)
        reader = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            writer = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self.fifo.chmod(0o222)
        except BaseException:
            os.close(reader)
            with contextlib.suppress(UnboundLocalError):
                os.close(writer)
            raise
        return reader, writer

    def remove(self) -> None:
        """Delete it all, also what a run without isolation left unreadable in tmp."""

        def retry(func: Callable[[str], object], path: str, _exc: object) -> None:
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(path), stat.S_IRWXU)
                if os.path.isdir(path) and not os.path.islink(path):
                    os.chmod(path, stat.S_IRWXU)
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    func(path)

        if sys.version_info >= (3, 12):
            shutil.rmtree(self.root, onexc=retry)
        else:
            shutil.rmtree(self.root, onerror=retry)
