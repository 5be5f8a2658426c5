"""One LMDB environment per store directory per process, and transactions that never fail
on a full or resized map.

LMDB forbids opening the same files twice in one process (its fcntl locks belong to the
process), so stores opened on the same directory share one environment, reference counted.
All transactions of a process on an environment take its lock, which keeps `set_mapsize`
(it must not run while any transaction of this process is open) safe across threads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import lmdb

from .crypto import Keys
from .errors import MemoryError
from .model import Damage, Quarantined
from .quarantine import move
from .records import DB_NAMES, FORMAT, SEALED_DBS, describe
from .writer import NOT_AUTHENTIC

T = TypeVar("T")

__all__ = ["MAX_MAP_SIZE", "PROBES", "Listener", "SharedEnv", "acquire", "check_key", "release"]

if TYPE_CHECKING:
    from typing import TypeAlias

    Txn: TypeAlias = lmdb.Transaction[bytes]  # buffers=False: keys and values are bytes

MAX_MAP_SIZE = 1 << 40
PROBES = 4
"""Values of each sealed database `check_key` tries when the key check itself does not open:
one that opens proves the data key right."""
log = logging.getLogger("reverie.memory")
Listener = Callable[[list[Quarantined]], None]
_registry: dict[tuple[int, int, int], SharedEnv] = {}
_registry_lock = threading.Lock()


class SharedEnv:
    """An open LMDB environment, its named databases, and the process-local lock."""

    def __init__(self, key: tuple[int, int, int], directory: Path, map_size: int, sync: bool) -> None:
        self.key = key
        self.sync = sync
        self.lock = threading.RLock()
        self.refs = 0
        self.listeners: list[Listener] = []
        """Told of every value a store of this process quarantines in this environment."""
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

    def notify(self, moved: list[Quarantined]) -> None:
        for listener in list(self.listeners):
            try:
                listener(moved)
            except Exception:  # a listener's bug must not fail the read that found the damage
                log.exception("a quarantine listener failed")

    def _grow(self) -> None:
        size = self.env.info()["map_size"] * 2
        if size > MAX_MAP_SIZE:
            raise MemoryError(f"memory store {self.env.path()} would exceed {MAX_MAP_SIZE >> 30} GiB")
        self.env.set_mapsize(size)

    def used_bytes(self) -> int:
        """Bytes of the pages in use (up to the last one written): what the store holds, not its map's size."""
        with self.lock:  # no resize of the map while its meta page is read
            return int((self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"])

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
    """Stamp a new store with a sealed marker; refuse a data key that does not open it.

    A marker that does not open while other values of the store do is itself damaged: it is
    quarantined and stamped again, rather than taken for a wrong key (which would disable the
    agent for one bad value)."""
    meta = shared.dbs["meta"]
    raw = shared.read(lambda txn: txn.get(b"check", db=meta))
    if raw is not None and _opens(keys, b"meta", b"check", raw) == FORMAT:
        return
    if raw is not None or _holds_values(shared):
        if not _key_opens_a_value(shared, keys):
            raise MemoryError(f"the data key {directory / 'data.key'} does not open the store in {directory}")

    def stamp(txn: Txn) -> None:
        current = txn.get(b"check", db=meta)
        if current is not None and _opens(keys, b"meta", b"check", current) == FORMAT:
            return  # another opener stamped it meanwhile
        if current is not None:
            damage = Damage("meta", b"check", describe("meta", b"check"), NOT_AUTHENTIC, bytes(current))
            for entry in move(txn, shared.dbs, keys, [damage], now=time.time(), by=""):
                log.warning("memory store %s: its key check was damaged (quarantine entry #%d); other values "
                            "open with the data key, so it was stamped again", directory, entry.seq)
        txn.put(b"format", FORMAT, db=meta)
        txn.put(b"check", keys.seal(b"meta", b"check", FORMAT), db=meta)

    shared.write(stamp)


def _opens(keys: Keys, db: bytes, key: bytes, raw: bytes) -> bytes | None:
    try:
        return keys.open(db, key, raw)
    except MemoryError:
        return None


def _holds_values(shared: SharedEnv) -> bool:
    return shared.read(lambda txn: any(txn.stat(shared.dbs[name])["entries"] for name in SEALED_DBS))


def _key_opens_a_value(shared: SharedEnv, keys: Keys) -> bool:
    """Whether any of the first few sealed values of the store opens with `keys`."""
    def probe(txn: Txn) -> bool:
        for name in SEALED_DBS:
            with txn.cursor(db=shared.dbs[name]) as cursor:
                for tried, (key, raw) in enumerate(cursor):
                    if tried >= PROBES:
                        break
                    if _opens(keys, name.encode(), key, raw) is not None:
                        return True
        return False

    return shared.read(probe)
