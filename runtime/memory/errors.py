"""Errors of the memory layer, all under `ReverieError` so callers (and the CLI) catch one base."""

from __future__ import annotations

from pathlib import Path

from reverie.protocol.errors import ReverieError

from ..keyfiles import lost_key
from .model import Damage

__all__ = ["CorruptRecord", "DataKeyMissing", "MemoryError", "MemoryLocked", "PreconditionFailed", "WrongProcess"]


class MemoryError(ReverieError):  # deliberately namespaced: import it, never the builtin
    """Base of every memory error (shadows the builtin only inside this package's namespace)."""


class PreconditionFailed(MemoryError):
    """A compare-and-set write found other content than it expected; the batch wrote nothing.

    `expected` is the sha256 hex the writer expected (None: "must not exist"); `actual` the
    sha256 hex of the current content, or None when the path does not exist.
    """

    def __init__(self, path: str, expected: str | None, actual: str | None) -> None:
        super().__init__(f"precondition failed for {path}: expected "
                         f"{expected or 'no memory'}, found {actual or 'no memory'}")
        self.path = path
        self.expected = expected
        self.actual = actual


class MemoryLocked(MemoryError):
    """An exclusive operation on a store (an in-place dream, say) is already running."""


class WrongProcess(MemoryError):
    """A store opened in one process was used in another (after fork).

    LMDB environments and their write transactions must never cross a fork: the child has to
    open the store itself.
    """

    def __init__(self, path: str, opened_in: int, used_in: int) -> None:
        super().__init__(f"memory store {path} was opened in process {opened_in} and cannot be "
                         f"used in process {used_in}; open it again in this process")
        self.opened_in = opened_in
        self.used_in = used_in


class DataKeyMissing(MemoryError):
    """A store that holds data has no data key: reverie never creates a new key over it (that
    would start an empty memory and leave everything stored unreadable). `path` is the key's."""

    def __init__(self, path: Path, store: Path) -> None:
        super().__init__(lost_key(path, store, "a memory store"))
        self.path = path
        self.store = store


class CorruptRecord(MemoryError):
    """A stored value failed to open (`damage` says which and why).

    The store handles it where values are opened: the value is quarantined and reads as absent
    (see quarantine.py). Callers only meet this error if the value could not be moved aside."""

    def __init__(self, damage: Damage) -> None:
        super().__init__(f"{damage.where} ({damage.db}) {damage.error}")
        self.damage = damage
