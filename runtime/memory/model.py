"""The public value types of the memory layer: frozen, so a returned version is a fact."""

from __future__ import annotations

import enum
from typing import Final, final

import msgspec

from reverie.protocol.messages import Reason

__all__ = ["ANY", "AnyContent", "Damage", "Edge", "EdgeKind", "Lesson", "MemoryInfo", "Quarantined", "Verification",
           "Version"]


@final
class AnyContent:
    """Type of `ANY`: a write without a precondition (distinct from None, "must not exist")."""

    _instance: AnyContent | None = None

    def __new__(cls) -> AnyContent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY"

    def __reduce__(self) -> str:
        return "ANY"


ANY: Final = AnyContent()


class EdgeKind(enum.StrEnum):
    DERIVED_FROM = "derived-from"
    REFINES = "refines"
    REJECTED_BY = "rejected-by"
    SUPPORTS = "supports"


class Version(msgspec.Struct, frozen=True):
    """One immutable version of a memory.

    `collapsed` marks a version whose content a size budget dropped (`MemoryStore.collapse`):
    `content` is then b"" while `sha256` still names the content it had.
    """

    path: str
    version: int
    content: bytes
    sha256: str
    author: str
    created_at: float
    invalidated: bool = False
    reason: str = ""
    collapsed: bool = False

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")


class MemoryInfo(msgspec.Struct, frozen=True):
    """A version without its content, for listings and history."""

    path: str
    version: int
    sha256: str
    author: str
    created_at: float
    invalidated: bool
    size: int


class Edge(msgspec.Struct, frozen=True):
    src: str
    kind: EdgeKind
    dst: str


class Lesson(msgspec.Struct, frozen=True):
    """A critic's reason, remembered under the features of the task it was given for.

    Stored as a memory at `/lessons/<topic>/<id>` whose content is the msgpack of the lesson;
    `recall` finds it by shared features. `created_at` 0 and `author` "" are filled in on commit.
    """

    id: str
    topic: str
    reason: Reason
    features: tuple[str, ...]
    task_id: str = ""
    author: str = ""
    created_at: float = 0.0
    weight: float = 1.0
    source: str = ""
    """The peer whose gossiped feed this lesson came from; "" when learned here."""

    @property
    def path(self) -> str:
        """`/lessons/<topic>/<id>`, or `/lessons/<topic>/<source>/<id>` for a peer's lesson (its
        namespace: a peer's lesson never replaces one learned here or another peer's)."""
        if self.source:
            return f"/lessons/{self.topic}/{self.source}/{self.id}"
        return f"/lessons/{self.topic}/{self.id}"


class Damage(msgspec.Struct, frozen=True):
    """A stored value that fails to open: its tag does not authenticate, or what it holds does
    not decode as the record it should be. `where` names it for people (a path and version, a
    lesson, a task's checkpoint); `db` and `key` locate it; `sealed` is its bytes as found."""

    db: str
    key: bytes
    where: str
    error: str
    sealed: bytes


class Quarantined(msgspec.Struct, frozen=True, kw_only=True):
    """A damaged value moved aside (`MemoryStore.quarantined`): number `seq` in the order values
    were moved, when (`at`) and by which agent's store (`by`). Reads never see it again."""

    seq: int
    db: str
    key: bytes
    where: str
    error: str
    sealed: bytes
    at: float
    by: str


class Verification(msgspec.Struct, frozen=True):
    """What `MemoryStore.verify` found: how many sealed values it opened, and those that failed."""

    checked: int
    damaged: tuple[Damage, ...]
