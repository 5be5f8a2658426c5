"""Private key files, one implementation for every key reverie keeps (memory data keys,
swarm and agent keys): created with mode 0600 by open(2) itself (never chmod'ed after the
fact), read only if they are regular files nobody else can access, never through a symlink."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from reverie.protocol.errors import ReverieError

__all__ = ["InsecureKeyFile", "KeyFileError", "KeyFileMissing", "create_private", "fsync_dir", "lost_key",
           "read_private", "write_atomic"]


class KeyFileError(ReverieError):
    """A private key file is missing, malformed, or cannot be created; `path` names it."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path


class KeyFileMissing(KeyFileError, FileNotFoundError):
    """No key file at `path` (also a FileNotFoundError, so callers may create one)."""


class InsecureKeyFile(KeyFileError):
    """A private key file whose mode gives group or others any access; it is not read."""

    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(path, f"refusing a private key with mode {mode:04o}: group or others can "
                               "access it (it must be 0600)")
        self.mode = mode


def lost_key(path: Path, store: Path, holds: str) -> str:
    """What to say when the key of an existing `store` is gone: a new key would leave
    everything there unreadable, so reverie never makes one; restore this one."""
    return (f"the key {path} is missing, but {store} holds {holds} sealed with it: without that key "
            f"none of it can be read. Restore {path.name} from a backup (mode 0600, owner only); "
            f"to start empty instead, move {store} aside")


def read_private(path: Path, size: int) -> bytes:
    """Exactly `size` bytes of the key file at `path`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyFileMissing(path, "no such key file") from None
    except OSError as exc:
        raise KeyFileError(path, exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(path, "not a regular file")
        if st.st_mode & 0o077:
            raise InsecureKeyFile(path, stat.S_IMODE(st.st_mode))
        secret = os.read(fd, size + 1)
    finally:
        os.close(fd)
    if len(secret) != size:
        raise KeyFileError(path, f"{len(secret)} bytes long, expected {size}")
    return secret


def create_private(path: Path, secret: bytes) -> None:
    """Write a new key file (0600, fsynced); an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise KeyFileError(path, "already exists; refusing to overwrite a private key") from None
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` so a reader (or a crash) sees the old file or the new one,
    never a torn one: written to a sibling temporary file, fsynced, renamed over, and the
    rename made durable."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a new directory entry (a created key file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
