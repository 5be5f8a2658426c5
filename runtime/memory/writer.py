"""Applying a batch inside one LMDB write transaction.

Operations apply in order and see each other (a batch may put a path, then invalidate it).
Nothing here has an effect outside the transaction, so the commit can rerun it from scratch
after growing the map, and an exception (a failed precondition) leaves the store untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .batch import CheckpointOp, InvalidateOp, LessonOp, LinkOp, Op, PutOp
from .crypto import Keys
from .errors import CorruptRecord, MemoryError, PreconditionFailed
from .model import ANY, Damage, Lesson, Version
from .records import (
    POSTINGS_PER_FEATURE,
    Head,
    Record,
    describe,
    edge_key,
    path_key,
    u64,
    version_key,
)

if TYPE_CHECKING:
    from .env import Txn

__all__ = [
    "DECODE_ERRORS",
    "NOT_AUTHENTIC",
    "Reader",
    "Writer",
    "decode_head",
    "decode_lesson",
    "decode_record",
    "raw_bytes",
]

T = TypeVar("T")
_encode = msgspec.msgpack.Encoder().encode
_head = msgspec.msgpack.Decoder(Head)
_record = msgspec.msgpack.Decoder(Record)
_lesson = msgspec.msgpack.Decoder(Lesson)
decode_head, decode_record, decode_lesson = _head.decode, _record.decode, _lesson.decode
DECODE_ERRORS = (msgspec.DecodeError, ValueError)
"""What a decoder raises for bytes that are not what it expects (json's and msgspec's errors)."""
NOT_AUTHENTIC = "does not authenticate: its bytes changed on disk, or it was sealed with another data key"


def raw_bytes(data: bytes) -> bytes:
    return data


class Reader:
    """Opening the sealed values of one transaction: the one place a damaged value is noticed.

    A value that does not authenticate, or whose plaintext does not decode, raises
    `CorruptRecord` (in writes: a write must never mistake a damaged head for a missing one and
    overwrite the versions under it), or, when the reader was given a `damaged` list, is added
    to it and reads as absent (in reads: the store quarantines what was found once the
    transaction ends, then reads again)."""

    def __init__(self, txn: Txn, dbs: dict[str, Any], keys: Keys, damaged: list[Damage] | None = None) -> None:
        self.txn = txn
        self.dbs = dbs
        self.keys = keys
        self.damaged = damaged

    def open(self, db: str, key: bytes, raw: bytes, decode: Callable[[bytes], T]) -> T | None:
        """The value `raw` stored at `key` in `db`, decrypted and decoded; None if it is damaged."""
        try:
            plaintext = self.keys.open(db.encode(), key, raw)
        except MemoryError:
            self.damage(db, key, raw, NOT_AUTHENTIC)
            return None
        try:
            return decode(plaintext)
        except DECODE_ERRORS as exc:
            self.damage(db, key, raw, f"does not decode: {type(exc).__name__}: {str(exc)[:200]}")
            return None

    def open_content(self, vkey: bytes, raw: bytes, record: Record, decode: Callable[[bytes], T]) -> T | None:
        """The content of `record` (the version at `vkey`, sealed as `raw`) decoded by `decode`;
        content it refuses damages the version (None)."""
        try:
            return decode(record.content)
        except DECODE_ERRORS as exc:
            self.damage("versions", vkey, raw,
                        f"holds content that does not decode: {type(exc).__name__}: {str(exc)[:200]}")
            return None

    def damage(self, db: str, key: bytes, raw: bytes, error: str) -> None:
        """Report the value at `key` in `db` as damaged (see the class)."""
        found = Damage(db, bytes(key), describe(db, key), error, bytes(raw))
        if self.damaged is None:
            raise CorruptRecord(found)
        self.damaged.append(found)

    def latest(self, pkey: bytes) -> bytes | None:
        """The key of the newest version record of the path `pkey`, or None."""
        prefix = pkey + b"\0"
        with self.txn.cursor(db=self.dbs["versions"]) as cursor:
            found = cursor.prev() if cursor.set_range(prefix + b"\xff" * 8) else cursor.last()
            return cursor.key() if found and cursor.key().startswith(prefix) else None

    def content(self, vkey: bytes, decode: Callable[[bytes], T]) -> T | None:
        """The content of the version at `vkey` decoded, or None (absent, damaged, collapsed)."""
        raw = self.txn.get(vkey, db=self.dbs["versions"])
        record = None if raw is None else self.record(vkey, raw)
        if raw is None or record is None or record.collapsed:
            return None
        return self.open_content(vkey, raw, record, decode)

    def head(self, pkey: bytes) -> Head | None:
        raw = self.txn.get(pkey, db=self.dbs["heads"])
        return None if raw is None else self.open("heads", pkey, raw, _head.decode)

    def record(self, vkey: bytes, raw: bytes | None = None) -> Record | None:
        """The version record at `vkey` (`raw`: its sealed value, if already read)."""
        if raw is None:
            raw = self.txn.get(vkey, db=self.dbs["versions"])
        return None if raw is None else self.open("versions", vkey, raw, _record.decode)

    def lesson(self, seq: int) -> Lesson | None:
        skey = u64(seq)
        raw = self.txn.get(skey, db=self.dbs["lessons"])
        return None if raw is None else self.open("lessons", skey, raw, _lesson.decode)


class Writer(Reader):
    def __init__(self, txn: Txn, dbs: dict[str, Any], keys: Keys, now: float) -> None:
        super().__init__(txn, dbs, keys)
        self.now = now
        self._counters: dict[bytes, int] = {}

    def apply(self, ops: list[Op], author: str) -> list[Version]:
        out: list[Version] = []
        for op in ops:
            if isinstance(op, PutOp):
                out.append(self._put(op, author))
            elif isinstance(op, LinkOp):
                self.txn.put(edge_key(op.src, op.kind, op.dst), b"", db=self.dbs["edges_out"])
                self.txn.put(edge_key(op.dst, op.kind, op.src), b"", db=self.dbs["edges_in"])
            elif isinstance(op, InvalidateOp):
                out.append(self._invalidate(op, author))
            elif isinstance(op, CheckpointOp):
                if op.data is None:
                    self.txn.delete(op.key, db=self.dbs["checkpoints"])
                else:
                    self.txn.put(op.key, self.keys.seal(b"checkpoints", op.key, op.data), db=self.dbs["checkpoints"])
            else:
                out.append(self._lesson(op, author))
        for name, value in self._counters.items():
            self.txn.put(name, u64(value), db=self.dbs["meta"])
        return out

    # ------------------------------------------------------------------ operations

    def _put(self, op: PutOp, author: str) -> Version:
        pkey = op.key
        head = self.head(pkey)
        if op.expect is not ANY:
            actual = head.sha256.hex() if head is not None else None
            if actual != op.expect:
                raise PreconditionFailed(op.path, op.expect, actual)  # type: ignore[arg-type]
        self._unindex(head, pkey)
        return self._write(op.path, pkey, head, Record(op.content, hashlib.sha256(op.content).digest(),
                                                       author, self.now))

    def _invalidate(self, op: InvalidateOp, author: str) -> Version:
        pkey = op.key
        head = self.head(pkey)
        current = None if head is None else self.record(version_key(pkey, head.version))
        if head is None or current is None:
            raise MemoryError(f"cannot invalidate {op.path}: there is no memory at that path")
        if op.expect is not ANY and head.sha256.hex() != op.expect:
            raise PreconditionFailed(op.path, op.expect, head.sha256.hex())  # type: ignore[arg-type]
        self._unindex(head, pkey)
        record = Record(current.content, current.sha256, author, self.now, invalidated=True,
                        reason=op.reason, collapsed=current.collapsed)
        dead_seq = 0 if head.lesson else self._next(b"dead_seq")
        if dead_seq:
            self.txn.put(u64(dead_seq) + pkey, b"", db=self.dbs["dead"])
        return self._write(op.path, pkey, head, record, lesson=head.lesson, dead_seq=dead_seq)

    def _lesson(self, op: LessonOp, author: str) -> Version:
        lesson = op.lesson
        if not lesson.author or not lesson.created_at:
            lesson = msgspec.structs.replace(lesson, author=lesson.author or author,
                                             created_at=lesson.created_at or self.now)
        path = lesson.path
        pkey = path_key(path)
        head = self.head(pkey)
        self._unindex(head, pkey)
        seq = self._next(b"lesson_seq")
        content = _encode(lesson)
        skey = u64(seq)
        self.txn.put(skey, self.keys.seal(b"lessons", skey, content), db=self.dbs["lessons"])
        with self.txn.cursor(db=self.dbs["features"]) as cursor:
            for name in set(lesson.features):
                hkey = self.keys.feature(name)
                cursor.put(hkey, skey)
                # the newest POSTINGS_PER_FEATURE only (see recall.py); ours is the newest
                while cursor.count() > POSTINGS_PER_FEATURE and cursor.first_dup():
                    cursor.delete()
        record = Record(content, hashlib.sha256(content).digest(), author, self.now)
        return self._write(path, pkey, head, record, lesson=True, lesson_seq=seq)

    # ------------------------------------------------------------------ helpers

    def _write(self, path: str, pkey: bytes, head: Head | None, record: Record, *, lesson: bool = False,
               lesson_seq: int = 0, dead_seq: int = 0) -> Version:
        version = 1 if head is None else head.version + 1
        vkey = version_key(pkey, version)
        self.txn.put(vkey, self.keys.seal(b"versions", vkey, _encode(record)), db=self.dbs["versions"])
        new = Head(version, record.sha256, record.author, record.created_at, record.invalidated,
                   len(record.content), lesson, lesson_seq, dead_seq, record.collapsed)
        self.txn.put(pkey, self.keys.seal(b"heads", pkey, _encode(new)), db=self.dbs["heads"])
        return Version(path, version, record.content, record.sha256.hex(), record.author, record.created_at,
                       record.invalidated, record.reason, record.collapsed)

    def _unindex(self, head: Head | None, pkey: bytes) -> None:
        """Drop what indexes the current version: its recall postings and its dead entry."""
        if head is None:
            return
        if head.lesson_seq:
            skey = u64(head.lesson_seq)
            old = self.lesson(head.lesson_seq)
            if old is not None:
                for name in set(old.features):
                    self.txn.delete(self.keys.feature(name), skey, db=self.dbs["features"])
            self.txn.delete(skey, db=self.dbs["lessons"])
        if head.dead_seq:
            self.txn.delete(u64(head.dead_seq) + pkey, db=self.dbs["dead"])

    def _next(self, name: bytes) -> int:
        if name not in self._counters:
            raw = self.txn.get(name, db=self.dbs["meta"])
            self._counters[name] = 0 if raw is None else int.from_bytes(raw, "big")
        self._counters[name] += 1
        return self._counters[name]

    # ------------------------------------------------------------------ size budget

    def collapse(self, keep_dead: int) -> int:
        """Empty the content of every dead path but the newest `keep_dead`; see MemoryStore."""
        dead = self.dbs["dead"]
        with self.txn.cursor(db=dead) as cursor:
            keys = list(cursor.iterprev(values=False))
        count = 0
        for key in keys[max(keep_dead, 0):]:
            pkey = key[8:]
            head = self.head(pkey)
            self.txn.delete(key, db=dead)
            if head is None or head.lesson:
                continue
            for version in range(1, head.version + 1):
                vkey = version_key(pkey, version)
                record = self.record(vkey)
                if record is not None and not record.collapsed:
                    emptied = msgspec.structs.replace(record, content=b"", collapsed=True)
                    sealed = self.keys.seal(b"versions", vkey, _encode(emptied))
                    self.txn.put(vkey, sealed, db=self.dbs["versions"])
            emptied_head = msgspec.structs.replace(head, size=0, dead_seq=0, collapsed=True)
            self.txn.put(pkey, self.keys.seal(b"heads", pkey, _encode(emptied_head)), db=self.dbs["heads"])
            count += 1
        return count
