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
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..keyfiles import (
    KeyFileError,
    KeyFileMissing,
    create_private,
    fsync_dir,
    read_private,
)
from .errors import DataKeyMissing, MemoryError

__all__ = ["FEATURE_BYTES", "KEY_BYTES", "KEY_FILE", "NONCE_BYTES", "Keys", "load_or_create_key"]

KEY_FILE = "data.key"
KEY_BYTES = 32
NONCE_BYTES = 12
FEATURE_BYTES = 16


def load_or_create_key(directory: Path, *, create: bool = True) -> bytes:
    """The store's data key: read it, or create it on first open (`create`: the store is new;
    a key missing beside an existing store is `DataKeyMissing`, never replaced)."""
    path = directory / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            raise DataKeyMissing(path, directory) from None
    tmp = directory / f".{KEY_FILE}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # our own leftover (a reused pid after a crash)
    key = os.urandom(KEY_BYTES)
    try:
        create_private(tmp, key)
    except KeyFileError as exc:
        raise MemoryError(f"cannot create the data key: {exc}") from None
    try:
        os.link(tmp, path)  # atomic: fails if another opener published its key first
    except FileExistsError:
        return _read_key(path)
    finally:
        os.unlink(tmp)
    fsync_dir(directory)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        return read_private(path, KEY_BYTES)
    except KeyFileMissing:
        raise  # a FileNotFoundError: the caller creates the key
    except KeyFileError as exc:
        raise MemoryError(f"refusing the data key {exc}") from None


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
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise MemoryError(f"a value in {db.decode()} at {key!r} does not authenticate: "
                              "the store is corrupted or was written with another data key") from None

    def feature(self, name: str) -> bytes:
        """HMAC-SHA256(feature key, name), truncated to 16 bytes: the index key of a feature."""
        mac = self._features.copy()
        mac.update(name.encode("utf-8"))
        return mac.digest()[:FEATURE_BYTES]
