"""Quarantine: a stored value that fails to open is moved aside, once, and then reads as absent.

A value fails to open when its tag does not authenticate (a flipped bit on disk, a torn or
foreign write) or when its plaintext does not decode as the record it should be. `Reader.open`
is where every value is opened, so it is where damage is noticed: reads carry on as if the
value were absent, and the store then moves what they found, in one write transaction, into
the `quarantine` database and reads again (writes stop, quarantine, and run again: a write
must never mistake a damaged head for a missing path and overwrite the versions under it).

An entry of `quarantine` is keyed by a sequence number (the order values were moved in) and
holds, sealed like every value, a `Quarantined`: the database and key the value was found at,
its sealed bytes exactly as found (someone holding the data key and a backup can still
investigate them), the error, when, and which agent's store moved it. A value is moved only if
it still holds the bytes that failed (another process may have rewritten or moved it
meanwhile), so each damaged value is moved, logged and counted once.

Moving a value mends what referred to it, so what stays is a consistent store:

- a head: rebuilt from the newest version record that opens (its lesson and dead-branch index
  entries found again); with none, the path is gone;
- a path's newest version: a live lesson's record is restored from the lesson's recall copy
  when that copy hashes to the head's sha256 (nothing is lost); otherwise the head goes back to
  the newest older version that opens, or, with none, the path is gone;
- an older version: only history misses it;
- a lesson's recall copy: its feature postings are dropped, so recall skips it;
- a checkpoint or an outbox entry: reads as absent (the dreamer resumes from the task's round
  memories);
- the store's key check: re-stamped when other values prove the data key right (`env.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from .crypto import Keys
from .errors import MemoryError
from .model import Damage, Quarantined, Verification
from .records import FORMAT, SEALED_DBS, Head, Record, u64, version_key
from .writer import (
    DECODE_ERRORS,
    Reader,
    decode_head,
    decode_lesson,
    decode_record,
    raw_bytes,
)

if TYPE_CHECKING:
    from .env import Txn

__all__ = ["entries", "move", "verify"]

_encode = msgspec.msgpack.Encoder().encode
_entry = msgspec.msgpack.Decoder(Quarantined)
_SEQ = b"quarantine_seq"
_DECODERS: dict[str, Callable[[bytes], Any]] = {"heads": decode_head, "versions": decode_record,
                                                "lessons": decode_lesson, "checkpoints": raw_bytes}


def move(txn: Txn, dbs: dict[str, Any], keys: Keys, damaged: Iterable[Damage], *, now: float,
         by: str) -> list[Quarantined]:
    """Move each damaged value that still holds the bytes found into `quarantine` and mend what
    referred to it; values found damaged while mending are moved too. Returns what was moved."""
    found: list[Damage] = []
    reader = Reader(txn, dbs, keys, found)
    raw_seq = txn.get(_SEQ, db=dbs["meta"])
    seq = 0 if raw_seq is None else int.from_bytes(raw_seq, "big")
    work = list(damaged)
    moved: list[Quarantined] = []
    while work:
        damage = work.pop(0)
        if txn.get(damage.key, db=dbs[damage.db]) != damage.sealed:
            continue  # rewritten or moved since it was read
        txn.delete(damage.key, db=dbs[damage.db])
        seq += 1
        where = _lesson_where(reader, damage.key) if damage.db == "lessons" else damage.where
        entry = Quarantined(seq=seq, db=damage.db, key=damage.key, where=where, error=damage.error,
                            sealed=damage.sealed, at=now, by=by)
        skey = u64(seq)
        txn.put(skey, keys.seal(b"quarantine", skey, _encode(entry)), db=dbs["quarantine"])
        moved.append(entry)
        mend = _MEND.get(damage.db)
        if mend is not None:
            mend(reader, damage.key)
        work += found
        found.clear()
    if moved:
        txn.put(_SEQ, u64(seq), db=dbs["meta"])
    return moved


def verify(reader: Reader) -> Verification:
    """Open every sealed value (checkpoint and outbox data are opaque here: authenticated only).
    `reader` collects the damage (it must have a `damaged` list)."""
    assert reader.damaged is not None
    checked = 0
    for name in SEALED_DBS:
        decode = _DECODERS[name]
        with reader.txn.cursor(db=reader.dbs[name]) as cursor:
            for key, raw in cursor:
                checked += 1
                reader.open(name, key, raw, decode)
    marker = reader.txn.get(b"check", db=reader.dbs["meta"])
    if marker is not None:
        checked += 1
        reader.open("meta", b"check", marker, _format)
    return Verification(checked, tuple(reader.damaged))


def entries(txn: Txn, dbs: dict[str, Any], keys: Keys) -> list[Quarantined]:
    """Everything in quarantine, oldest first. An entry that does not open itself is listed
    with its bytes and that error (it is never moved again)."""
    out: list[Quarantined] = []
    with txn.cursor(db=dbs["quarantine"]) as cursor:
        for key, raw in cursor:
            try:
                out.append(_entry.decode(keys.open(b"quarantine", key, raw)))
            except (*DECODE_ERRORS, MemoryError):
                seq = int.from_bytes(key, "big")
                out.append(Quarantined(seq=seq, db="quarantine", key=key, where=f"quarantine entry #{seq}",
                                       error="the quarantine entry itself does not open", sealed=raw, at=0.0,
                                       by=""))
    return out


def _format(plaintext: bytes) -> bytes:
    if plaintext != FORMAT:
        raise ValueError("it is not this store's format marker")
    return plaintext


# ------------------------------------------------------------------ mending


def _versions(txn: Txn, dbs: dict[str, Any], pkey: bytes, below: int = 1 << 64) -> list[tuple[bytes, bytes]]:
    """(key, sealed record) of the versions of `pkey` numbered below `below`, newest first."""
    prefix = pkey + b"\0"
    target = version_key(pkey, below) if below < 1 << 64 else prefix + b"\xff" * 8
    out: list[tuple[bytes, bytes]] = []
    with txn.cursor(db=dbs["versions"]) as cursor:
        ok = cursor.prev() if cursor.set_range(target) else cursor.last()
        while ok and cursor.key().startswith(prefix):
            out.append((cursor.key(), cursor.value()))
            ok = cursor.prev()
    return out


def _newest_good(reader: Reader, pkey: bytes, below: int = 1 << 64) -> tuple[int, Record] | None:
    for key, raw in _versions(reader.txn, reader.dbs, pkey, below):
        record = reader.record(key, raw)
        if record is not None:
            return int.from_bytes(key[-8:], "big"), record
    return None


def _put_head(reader: Reader, pkey: bytes, head: Head) -> None:
    reader.txn.put(pkey, reader.keys.seal(b"heads", pkey, _encode(head)), db=reader.dbs["heads"])


def _mend_head(reader: Reader, pkey: bytes) -> None:
    """The head is gone: rebuild it from the newest version record that opens."""
    newest = _newest_good(reader, pkey)
    if newest is None:
        return  # nothing of the path opens: it is gone (collapse drops a stale dead entry)
    version, record = newest
    lesson, lesson_seq = False, 0
    if pkey.startswith(b"/lessons/"):
        try:
            decode_lesson(record.content)
            lesson = True
        except DECODE_ERRORS:
            pass
        if lesson and not record.invalidated:
            lesson_seq = _lesson_seq(reader, record.content)
    dead_seq = _dead_seq(reader, pkey) if record.invalidated and not lesson else 0
    _put_head(reader, pkey, Head(version, record.sha256, record.author, record.created_at, record.invalidated,
                                 len(record.content), lesson, lesson_seq, dead_seq, record.collapsed))


def _lesson_seq(reader: Reader, content: bytes) -> int:
    """The sequence number of the live lesson whose recall copy holds `content` (0: none)."""
    with reader.txn.cursor(db=reader.dbs["lessons"]) as cursor:
        for key, raw in cursor:
            if reader.open("lessons", key, raw, raw_bytes) == content:
                return int.from_bytes(key, "big")
    return 0


def _dead_seq(reader: Reader, pkey: bytes) -> int:
    with reader.txn.cursor(db=reader.dbs["dead"]) as cursor:
        for key in cursor.iternext(values=False):
            if key[8:] == pkey:
                return int.from_bytes(key[:8], "big")
    return 0


def _mend_version(reader: Reader, vkey: bytes) -> None:
    """A version record is gone; if it was the head's, restore it or step the head back."""
    txn, dbs = reader.txn, reader.dbs
    pkey, number = vkey[:-9], int.from_bytes(vkey[-8:], "big")
    head = reader.head(pkey)
    if head is None or head.version != number:
        return
    skey = u64(head.lesson_seq)
    copy = txn.get(skey, db=dbs["lessons"]) if head.lesson_seq else None
    content = None if copy is None else reader.open("lessons", skey, copy, raw_bytes)
    if content is not None and hashlib.sha256(content).digest() == head.sha256:
        # a live lesson: its recall copy holds the very same content, and the head the rest
        record = Record(content, head.sha256, head.author, head.created_at)
        txn.put(vkey, reader.keys.seal(b"versions", vkey, _encode(record)), db=dbs["versions"])
        return
    older = _newest_good(reader, pkey, below=number)
    if older is not None:
        version, record = older
        _put_head(reader, pkey, msgspec.structs.replace(
            head, version=version, sha256=record.sha256, author=record.author, created_at=record.created_at,
            invalidated=record.invalidated, size=len(record.content), collapsed=record.collapsed))
        return
    txn.delete(pkey, db=dbs["heads"])  # nothing of the path opens: it is gone, and so is its index
    if content is not None:  # (a damaged recall copy is in `found`: moving it drops its postings)
        _mend_lesson(reader, skey)
        txn.delete(skey, db=dbs["lessons"])
    if head.dead_seq:
        txn.delete(u64(head.dead_seq) + pkey, db=dbs["dead"])


def _lesson_where(reader: Reader, skey: bytes) -> str:
    """`lesson #<seq>`, with the path of the lesson it is the recall copy of if a head names it."""
    seq = int.from_bytes(skey, "big")
    with reader.txn.cursor(db=reader.dbs["heads"]) as cursor:
        if cursor.set_range(b"/lessons/"):
            for key, raw in cursor:
                if not key.startswith(b"/lessons/"):
                    break
                head = reader.open("heads", key, raw, decode_head)
                if head is not None and head.lesson_seq == seq:
                    return f"the recall copy of lesson {key.decode('utf-8', 'replace')} (#{seq})"
    return f"lesson #{seq}"


def _mend_lesson(reader: Reader, skey: bytes) -> None:
    """A lesson's recall copy is gone: drop the feature postings that point at it."""
    features = reader.dbs["features"]
    with reader.txn.cursor(db=features) as cursor:
        stale = [key for key, seq in cursor.iternext() if seq == skey]
    for key in stale:
        reader.txn.delete(key, skey, db=features)


_MEND: dict[str, Callable[[Reader, bytes], None]] = {"heads": _mend_head, "versions": _mend_version,
                                                     "lessons": _mend_lesson}
