"""The data key and what is derived from it: sealing values, blinding feature names.

`data.key` (32 random bytes) is created with mode 0600 from the first syscall on, published
with link(2) so a concurrent opener never reads a half-written key, and refused later if
its mode lets group or others read it. Two subkeys are derived with HKDF-SHA256: one seals
every value with ChaCha20-Poly1305, bound to its database and key by the AAD (a sealed value
moved to another key fails to open); the other keys the HMACs that stand in for feature names
in the recall index, so the operation and state names of tasks never reach the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import MemoryError

KEY_FILE = "data.key"
KEY_BYTES = 32
NONCE_BYTES = 12
FEATURE_BYTES = 16


def load_or_create_key(directory: Path) -> bytes:
    """The store's data key: read it, or create it on first open."""
    path = directory / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    tmp = directory / f".{KEY_FILE}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # our own leftover (a reused pid after a crash)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        key = os.urandom(KEY_BYTES)
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic: fails if another opener published its key first
    except FileExistsError:
        return _read_key(path)
    finally:
        os.unlink(tmp)
    _fsync_dir(directory)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MemoryError(f"{path} is not a regular file")
        if st.st_mode & 0o077:
            raise MemoryError(f"refusing the data key {path}: its mode {stat.S_IMODE(st.st_mode):04o} "
                              "lets group or others access it (it must be 0600)")
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise MemoryError(f"the data key {path} is {len(key)} bytes long, expected {KEY_BYTES}")
    return key


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _subkey(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"reverie.memory.v1 " + purpose).derive(key)


class Keys:
    """Sealing and feature blinding for one store."""

    __slots__ = ("_aead", "_features")

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(_subkey(key, b"seal"))
        self._features = hmac.new(_subkey(key, b"features"), digestmod=hashlib.sha256)

    def seal(self, db: bytes, key: bytes, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, db + b"\0" + key)

    def open(self, db: bytes, key: bytes, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], db + b"\0" + key)
        except InvalidTag:
            raise MemoryError(f"a value in {db.decode()} at {key!r} does not authenticate: "
                              "the store is corrupted or was written with another data key") from None

    def feature(self, name: str) -> bytes:
        """HMAC-SHA256(feature key, name), truncated to 16 bytes: the index key of a feature."""
        mac = self._features.copy()
        mac.update(name.encode("utf-8"))
        return mac.digest()[:FEATURE_BYTES]
