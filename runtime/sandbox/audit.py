"""Knowing what a run tried: the isolation blocks it, the critic must also learn it was tried.

Python programs in the sandbox load a generated `sitecustomize.py` (from a read-only directory
on PYTHONPATH) that installs a `sys.addaudithook` tripwire. It reports, once per distinct
attempt and process: an inet `connect`/`sendto`/`sendmsg` (loopback too unless allowed: inside
the sandbox's own network namespace 127.0.0.1 is never the host); a `bind` to a non-loopback
address (unless loopback is allowed: inside, only the loopback can reach it); a name lookup of
a non-local host; an AF_UNIX connect to a path outside; a write (`open` for writing,
`os.mkdir`, `os.remove`, `os.rmdir`, `os.rename`, `os.symlink`, `os.link`, `os.truncate`,
`os.chmod`, `os.chown`) to a path outside the workdir and the private tmp. A write under the
private tmp into a directory that does not exist there is outside too: it names a host path
(the sandbox's tmp starts empty), and it could only fail.

Reports go to a FIFO on the read-only bind, mode 0222: every descendant can open it by path
(an inherited descriptor is closed by `subprocess`' close_fds in every child), nobody in the
sandbox can read it back (an anonymous pipe's write end can be reopened for reading through
/proc/self/fd), and no file edit can unsay a report. The hook is a set lookup for every other
event, and cheap checks on writes only. Programs that skip site customisation (`python -I`,
`-S`, `-E`) or are not Python are caught, at best, by `scan_output`: the errno texts the
blocked attempt prints.
"""

from __future__ import annotations

from collections.abc import Iterable

from .outcome import Violation

__all__ = ["KINDS", "MAX_VIOLATIONS", "TELLTALES", "hook_source", "parse_reports", "scan_output"]

KINDS = ("network", "write_outside")
MAX_VIOLATIONS = 100
TELLTALES = {"Network is unreachable": "network", "Read-only file system": "write_outside"}
"""Errno texts of blocked attempts, for programs the hook does not see."""

_HOOK = r'''

def _reverie_tripwire(cfg):
    import os
    import sys
    from _socket import AF_INET, AF_INET6, AF_UNIX, inet_pton
    from os.path import basename, dirname, isabs, isdir, join, normpath, realpath

    report_path = cfg["report"]
    roots = tuple(cfg["roots"])
    tmp = cfg["tmp"]
    tmp_slash = tmp + "/"
    local = frozenset(cfg["local_names"])
    allow_loopback = cfg["allow_loopback"]
    dev = frozenset(("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/stdout", "/dev/stderr", "/dev/ptmx"))
    dev_dirs = ("/dev/fd/", "/dev/shm/", "/dev/pts/", "/proc/self/", "/proc/thread-self/")
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    fs = {"os.mkdir": ((0, 2),), "os.remove": ((0, 1),), "os.rmdir": ((0, 1),),
          "os.rename": ((0, 2), (1, 3)), "os.symlink": ((1, 2),), "os.link": ((1, 3),),
          "os.truncate": ((0, None),), "os.chmod": ((0, 2),), "os.chown": ((0, 3),)}
    net = frozenset(("socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"))
    dns = frozenset(("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"))
    watched = frozenset(fs) | net | dns | {"open"}
    seen = set()
    out = [-1, None]  # the FIFO's fd in this process, and its inode (the fd may be closed and reused)

    def report(kind, detail):
        line = kind + "\t" + detail.replace("\n", " ").replace("\t", " ")[:300]
        if line in seen or len(seen) >= 64:
            return
        seen.add(line)
        try:
            if out[0] < 0 or os.fstat(out[0]).st_ino != out[1]:
                out[0] = os.open(report_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                out[1] = os.fstat(out[0]).st_ino
            os.write(out[0], (line + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    def outside(path, dir_fd, follow):
        if isinstance(path, int):
            return None
        path = os.fsdecode(path)
        if not isabs(path):
            base = os.getcwd() if dir_fd is None or dir_fd < 0 else os.readlink("/proc/self/fd/%d" % dir_fd)
            path = join(base, path)
        path = normpath(path)
        if path in dev or path.startswith(dev_dirs) or path == report_path:
            return None
        real = realpath(path) if follow else join(realpath(dirname(path)), basename(path))
        for root in roots:
            if real == root or real.startswith(root + "/"):
                return None
        if real == tmp or (real.startswith(tmp_slash) and isdir(dirname(real))):
            return None
        return real

    def loopback(host):
        return host in local or host.startswith(("127.", "::ffff:127.")) or host == "::1"

    def literal(host):
        for family in (AF_INET, AF_INET6):
            try:
                inet_pton(family, host.split("%")[0])
                return True
            except (OSError, ValueError):
                pass
        return False

    def hook(event, args):
        if event not in watched:
            return
        try:
            if event == "open":
                if args[2] & write_flags:
                    where = outside(args[0], -1, True)
                    if where:
                        report("write_outside", "open " + where)
            elif event in fs:
                for i, fd_i in fs[event]:
                    where = outside(args[i], -1 if fd_i is None else args[fd_i], False)
                    if where:
                        report("write_outside", event[3:] + " " + where)
            elif event in dns:
                host = args[0]
                if isinstance(host, bytes):
                    host = host.decode("ascii", "replace")
                if host:
                    name = host.lower().rstrip(".")
                    if not (loopback(name) or name.endswith(".localhost") or literal(name)):
                        report("network", "resolve " + host)
            else:
                sock, address = args[0], args[1]
                if address is None:
                    return
                family, verb = sock.family, event[7:]
                if family == AF_UNIX:
                    if verb == "connect" and isinstance(address, (str, bytes)) and address[:1] not in ("\0", b"\0"):
                        where = outside(address, -1, True)
                        if where:
                            report("network", "connect unix:" + where)
                elif family in (AF_INET, AF_INET6):
                    host = str(address[0]) or ("0.0.0.0" if family == AF_INET else "::")
                    near = loopback(host.lower())
                    if not (allow_loopback and (near or verb == "bind")) and (verb != "bind" or not near):
                        report("network", "%s %s:%s" % (verb, host, address[1]))
        except Exception:
            pass

    sys.addaudithook(hook)
    here = cfg["here"]
    while here in sys.path:
        sys.path.remove(here)
    mine = sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401 - the one this shadows, if any
    except Exception:
        if mine is not None:
            sys.modules["sitecustomize"] = mine


_reverie_tripwire(_REVERIE)
del _reverie_tripwire, _REVERIE
'''


def hook_source(*, report: str, roots: Iterable[str], tmp: str, here: str,
                local_names: Iterable[str], allow_loopback: bool) -> str:
    """The `sitecustomize.py` for one run. Paths are as the sandboxed processes see them."""
    cfg = {"report": report, "roots": list(roots), "tmp": tmp, "here": here,
           "local_names": sorted(set(local_names)), "allow_loopback": allow_loopback}
    header = '"""reverie sandbox tripwire, generated: see reverie.runtime.sandbox.audit."""'
    return f"{header}\n\n_REVERIE = {cfg!r}\n{_HOOK}"


def parse_reports(data: bytes) -> list[Violation]:
    """The distinct violations in the FIFO's lines, in order, at most MAX_VIOLATIONS; lines of
    another shape (only the sandbox can write there) are dropped."""
    found: dict[tuple[str, str], Violation] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        kind, _, detail = line.partition("\t")
        if kind in KINDS and detail and (kind, detail) not in found and len(found) < MAX_VIOLATIONS:
            found[kind, detail] = Violation(kind=kind, detail=detail)
    return list(found.values())


def scan_output(texts: Iterable[str], already: Iterable[Violation]) -> list[Violation]:
    """Violations told by errno texts in the output, of kinds the hook did not report."""
    kinds = {v.kind for v in already}
    out: list[Violation] = []
    joined = "\n".join(texts)
    for text, kind in TELLTALES.items():
        if kind not in kinds and text in joined:
            kinds.add(kind)
            out.append(Violation(kind=kind, detail=f"output: {text}"))
    return out
