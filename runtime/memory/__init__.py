"""Synthetic memory for agents: versioned, encrypted, graph-linked, recallable.

One LMDB environment per agent directory. Memories live at paths (`/tasks/<id>/rounds/2`);
every write is a new immutable version with its author and time, optionally conditional on
the sha256 of the current content. Typed edges link memories into a walkable graph, lessons
are recalled by shared features, and checkpoints commit atomically with the memories of the
step they checkpoint. Content, authors, hashes, lessons and checkpoints are sealed with the
store's data key; paths and task ids (LMDB keys) are the only plaintext metadata. A value that
fails to open (damaged on disk) is quarantined once and reads as absent (see quarantine.py).
"""

from .batch import Batch
from .errors import (
    CorruptRecord,
    DataKeyMissing,
    MemoryError,
    MemoryLocked,
    PreconditionFailed,
    WrongProcess,
)
from .facade import Memory
from .model import (
    ANY,
    Damage,
    Edge,
    EdgeKind,
    Lesson,
    MemoryInfo,
    Quarantined,
    Verification,
    Version,
)
from .store import MemoryStore

__all__ = [
    "ANY",
    "Batch",
    "CorruptRecord",
    "Damage",
    "DataKeyMissing",
    "Edge",
    "EdgeKind",
    "Lesson",
    "Memory",
    "MemoryError",
    "MemoryInfo",
    "MemoryLocked",
    "MemoryStore",
    "PreconditionFailed",
    "Quarantined",
    "Verification",
    "Version",
    "WrongProcess",
]
