"""Lending the workdir to the sandbox's user, when reverie runs as root (see `launcher`): its
entries are chowned to that uid before the run and back after it.

Symlinks are never followed (lchown, no walk into linked directories). A regular file with
more than one hard link is left alone, read-only to the sandbox: its other name may be a host
file (a copy made with hard links). The sandbox itself cannot link to anything outside the
workdir (a hard link across mounts fails with EXDEV), and it is dead before the walk back.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Owners", "give_back", "hand_over", "pick_sandbox_id"]

Owners = dict[str, tuple[int, int]]
"""Path -> (uid, gid) before the run."""


def _ranges(path: str) -> list[tuple[int, int]]:
    """[start, end) of the ids this process's user namespace maps."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return [(0, 65536)]
    out = []
    for line in lines:
        inside, _, count = (int(x) for x in line.split())
        out.append((inside, inside + count))
    return out


def pick_sandbox_id() -> int:
    """A uid (also used as gid) that no account is likely to use, mapped in this namespace:
    random, so that concurrent runs do not share one RLIMIT_NPROC budget."""
    spans = []
    for ustart, uend in _ranges("/proc/self/uid_map"):
        for gstart, gend in _ranges("/proc/self/gid_map"):
            start, end = max(ustart, gstart, 1000), min(uend, gend, 1 << 31)
            if end - start >= 1 << 16 and end > 200_000:
                start = max(start, 100_000)  # above system, human and most subordinate ids
            if end - start > 1:
                spans.append((start, end))
    if not spans:
        raise OSError("no unprivileged uid is mapped in this user namespace")
    start, end = max(spans, key=lambda s: s[1] - s[0])
    while (uid := start + secrets.randbelow(end - start)) in (65534, 65535):
        pass
    return uid


def _entries(top: Path) -> Iterator[tuple[str, os.stat_result]]:
    yield str(top), os.lstat(top)
    for root, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            path = os.path.join(root, name)
            with contextlib.suppress(FileNotFoundError):
                yield path, os.lstat(path)


def hand_over(top: Path, uid: int, owners: Owners) -> None:
    """Chown `top` and what is under it to `uid`, noting in `owners` (as it goes: a failure
    half-way leaves it complete for `give_back`) whom to give each back to."""
    for path, st in _entries(top):
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            continue
        owners[path] = (st.st_uid, st.st_gid)
        os.chown(path, uid, uid, follow_symlinks=False)


def give_back(top: Path, uid: int, owners: Owners) -> None:
    """Chown what `uid` owns under `top` back: to its old owner, or (made in the run) to the
    owner of `top`."""
    default = owners.get(str(top))
    for path, st in _entries(top):
        if st.st_uid == uid or st.st_gid == uid:
            owner = owners.get(path, default)
            if owner is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(path, *owner, follow_symlinks=False)
