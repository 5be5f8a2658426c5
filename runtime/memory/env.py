"""One LMDB environment per store directory per process, and transactions that never fail
on a full or resized map.

LMDB forbids opening the same files twice in one process (its fcntl locks belong to the
process), so stores opened on the same directory share one environment, reference counted.
All transactions of a process on an environment take its lock, which keeps `set_mapsize`
(it must not run while any transaction of this process is open) safe across threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import lmdb

from .crypto import Keys
from .errors import MemoryError
from .records import DB_NAMES, FORMAT

T = TypeVar("T")

if TYPE_CHECKING:
    from typing import TypeAlias

    Txn: TypeAlias = lmdb.Transaction[bytes]  # buffers=False: keys and values are bytes

MAX_MAP_SIZE = 1 << 40
_registry: dict[tuple[int, int, int], SharedEnv] = {}
_registry_lock = threading.Lock()


class SharedEnv:
    """An open LMDB environment, its named databases, and the process-local lock."""

    def __init__(self, key: tuple[int, int, int], directory: Path, map_size: int, sync: bool) -> None:
        self.key = key
        self.sync = sync
        self.lock = threading.RLock()
        self.refs = 0
        self.env = lmdb.open(str(directory), map_size=map_size, subdir=True, sync=sync, metasync=sync,
                             mode=0o600, max_dbs=16, lock=True, readahead=False)
        try:
            self.env.reader_check()  # slots of readers killed mid-transaction
            self.dbs = self.write(lambda txn: {
                name: self.env.open_db(name.encode(), txn=txn, dupsort=name == "features",
                                       dupfixed=name == "features") for name in DB_NAMES})
        except BaseException:
            self.env.close()
            raise

    def read(self, fn: Callable[[Txn], T]) -> T:
        """Run `fn` in a read transaction (adopting a map another process grew)."""
        with self.lock:
            while True:
                try:
                    with self.env.begin() as txn:
                        return fn(txn)
                except lmdb.MapResizedError:
                    self.env.set_mapsize(0)

    def write(self, fn: Callable[[Txn], T]) -> T:
        """Run `fn` in one write transaction and commit it; all or nothing.

        A full map is doubled and `fn` runs again from scratch, so `fn` must not have effects
        outside the transaction. Exceptions from `fn` abort and propagate.
        """
        with self.lock:
            while True:
                try:
                    txn = self.env.begin(write=True)
                except lmdb.MapResizedError:
                    self.env.set_mapsize(0)
                    continue
                try:
                    result = fn(txn)
                    txn.commit()
                    return result
                except lmdb.MapFullError:
                    txn.abort()
                    self._grow()
                except lmdb.MapResizedError:
                    txn.abort()
                    self.env.set_mapsize(0)
                except BaseException:
                    txn.abort()
                    raise

    def _grow(self) -> None:
        size = self.env.info()["map_size"] * 2
        if size > MAX_MAP_SIZE:
            raise MemoryError(f"memory store {self.env.path()} would exceed {MAX_MAP_SIZE >> 30} GiB")
        self.env.set_mapsize(size)

    def flush(self) -> None:
        if not self.sync:
            self.env.sync(True)


def acquire(directory: Path, *, map_size: int, sync: bool) -> SharedEnv:
    """The environment of `directory` in this process, opened if needed."""
    st = os.stat(directory)
    key = (os.getpid(), st.st_dev, st.st_ino)
    with _registry_lock:
        _forget_inherited(key, directory)
        shared = _registry.get(key)
        if shared is None:
            shared = _registry[key] = SharedEnv(key, directory, map_size, sync)
        shared.refs += 1
        return shared


def _forget_inherited(key: tuple[int, int, int], directory: Path) -> None:
    """In a forked child: close the copy of the parent's environment on the same files, which
    py-lmdb would otherwise take for one already open in this process.

    That is safe only if no transaction was open when the process forked (the copy would
    release the parent's reader slot or write lock); transactions run under `lock`, so a lock
    still held in the child means one was, and the store cannot be reopened here.
    """
    for other in [k for k in _registry if k[1:] == key[1:] and k[0] != key[0]]:
        inherited = _registry[other]
        if not inherited.lock.acquire(blocking=False):
            raise MemoryError(f"this process was forked while process {other[0]} was in a transaction on "
                              f"{directory}; open the store from a fresh process instead")
        del _registry[other]
        inherited.env.close()


def release(shared: SharedEnv) -> None:
    with _registry_lock:
        shared.refs -= 1
        if shared.refs > 0:
            return
        _registry.pop(shared.key, None)
    with shared.lock:
        shared.flush()
        shared.env.close()


def check_key(shared: SharedEnv, keys: Keys, directory: Path) -> None:
    """Stamp a new store with a sealed marker; refuse a data key that does not open it."""
    meta = shared.dbs["meta"]
    raw = shared.read(lambda txn: txn.get(b"check", db=meta))
    if raw is None:
        def stamp(txn: Txn) -> bytes:
            current = txn.get(b"check", db=meta)
            if current is None:
                current = keys.seal(b"meta", b"check", FORMAT)
                txn.put(b"format", FORMAT, db=meta)
                txn.put(b"check", current, db=meta)
            return bytes(current)
        raw = shared.write(stamp)
    try:
        ok = keys.open(b"meta", b"check", raw) == FORMAT
    except MemoryError:
        ok = False
    if not ok:
        raise MemoryError(f"the data key {directory / 'data.key'} does not open the store in {directory}")
