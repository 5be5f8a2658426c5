"""The embedded server's JetStream encryption key: queued tasks and stored results are
encrypted at rest (ChaCha20-Poly1305, nats-server's own store encryption) under a key in
`<data_dir>/keys/nats/jetstream.key` (0600). It reaches nats-server through an environment
variable the config file names, so the key is never written into the config.

A missing key beside a store that was encrypted is refused (like a lost memory data key):
a new key would leave every queued task and stored result unreadable.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ReverieError
from ..keyfiles import KeyFileMissing, create_private, fsync_dir, lost_key, read_private

__all__ = ["JetStreamKeyMissing", "ensure_jetstream_key", "mark_encrypted"]

KEY_FILE = "jetstream.key"
MARK = ".encrypted"
"""Written into the store dir once the server has run encrypted: from then on a key is needed."""
KEY_CHARS = 64  # 32 random bytes, hex


class JetStreamKeyMissing(ReverieError):
    def __init__(self, path: Path, store: Path) -> None:
        super().__init__(lost_key(path, store, "the task queue and the stored results"))
        self.path = path
        self.store = store


def ensure_jetstream_key(key_dir: Path, store: Path) -> str:
    """The key (created on first use); `store` is the server's store dir (`<data_dir>/nats`)."""
    path = key_dir / KEY_FILE
    try:
        key = read_private(path, KEY_CHARS).decode()
    except KeyFileMissing:
        if (store / MARK).exists():
            raise JetStreamKeyMissing(path, store) from None
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_private(path, os.urandom(KEY_CHARS // 2).hex().encode())
        fsync_dir(key_dir)
        key = read_private(path, KEY_CHARS).decode()
    return key


def mark_encrypted(store: Path) -> None:
    store.mkdir(parents=True, exist_ok=True)
    (store / MARK).touch()
