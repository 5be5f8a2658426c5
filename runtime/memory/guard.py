"""Transactions that a damaged value never fails (see quarantine.py for what happens to it).

A read runs with a reader that collects the damage it meets (the value reads as absent), then
the damage is quarantined and the read runs again, until a run meets nothing new (values that
could not be moved, because another process holds them differently now, read as absent). A
write that meets a damaged value is rolled back, the value quarantined, and the write run
again: it must never take a damaged head for a missing path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from . import quarantine
from .crypto import Keys
from .errors import CorruptRecord
from .model import Damage, Quarantined, Verification
from .writer import Reader

if TYPE_CHECKING:
    from .env import SharedEnv, Txn

__all__ = ["Guard"]

T = TypeVar("T")
log = logging.getLogger("reverie.memory")


class Guard:
    """The transactions of one store: its environment, keys, and whose store it is (`agent`)."""

    def __init__(self, shared: SharedEnv, keys: Keys, agent: str, directory: Path) -> None:
        self._shared = shared
        self._dbs = shared.dbs
        self._keys = keys
        self._agent = agent
        self._directory = directory

    def read(self, fn: Callable[[Reader], T]) -> T:
        tried: set[tuple[str, bytes, bytes]] = set()
        while True:
            damaged: list[Damage] = []
            result = self._read_once(fn, damaged)
            fresh = [d for d in damaged if (d.db, d.key, d.sealed) not in tried]
            if not fresh:
                return result
            tried.update((d.db, d.key, d.sealed) for d in fresh)
            self.quarantine(fresh)

    def _read_once(self, fn: Callable[[Reader], T], damaged: list[Damage]) -> T:
        """One read transaction whose reader adds the damage it meets to `damaged`."""
        return self._shared.read(lambda txn: fn(Reader(txn, self._dbs, self._keys, damaged)))

    def write(self, fn: Callable[[Txn], T]) -> T:
        tried: set[tuple[str, bytes, bytes]] = set()
        while True:
            try:
                return self._shared.write(fn)
            except CorruptRecord as exc:
                d = exc.damage
                if (d.db, d.key, d.sealed) in tried:
                    raise  # it could not be moved aside
                tried.add((d.db, d.key, d.sealed))
                self.quarantine([d])

    def verify(self) -> Verification:
        """Every sealed value opened, in one read transaction; nothing is moved."""
        return self._shared.read(lambda txn: quarantine.verify(Reader(txn, self._dbs, self._keys, [])))

    def quarantine(self, damaged: list[Damage]) -> list[Quarantined]:
        """Move `damaged` aside in one write transaction; log each value moved, once, and tell
        the environment's listeners."""
        now = time.time()
        moved = self._shared.write(lambda txn: quarantine.move(txn, self._dbs, self._keys, damaged, now=now,
                                                               by=self._agent))
        for entry in moved:
            log.warning("memory of %s in %s: %s %s, so it was quarantined (entry #%d) and reads as absent from "
                        "now on; `reverie memory CONFIG --agent %s check` lists quarantined values",
                        self._agent, self._directory, entry.where, entry.error, entry.seq, self._agent)
        if moved:
            self._shared.notify(moved)
        return moved
