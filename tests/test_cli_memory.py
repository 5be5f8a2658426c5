"""`reverie memory` and `reverie task show` against a running swarm's dreamer (LMDB shared
between the agent process and the CLI process)."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

from reverie.protocol import ResultStatus

from .conftest import load_task, process_swarm, run_cli


async def cli_json(*args: str) -> object:
    proc = await asyncio.to_thread(run_cli, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def test_memory_and_task_commands_read_a_live_dreamer(tmp_path: Path) -> None:
    async with process_swarm(tmp_path) as (_, swarm):
        result = await swarm.submit(load_task("db-migration"), kind="plan", task_id="mig", timeout=30)
        assert result.status is ResultStatus.ACCEPTED
        cfg = str(tmp_path / "swarm.toml")
        mem = ("memory", cfg, "--agent", "dreamer", "--json")

        listed = await cli_json(*mem, "ls", "/tasks/mig", "--all")
        paths = {m["path"] for m in listed}
        assert {"/tasks/mig", "/tasks/mig/result", "/tasks/mig/rounds/1", "/tasks/mig/rounds/2"} <= paths
        assert any(m["invalidated"] for m in listed), "rejected branches are invalidated, kept for audit"
        live = await cli_json(*mem, "ls", "/tasks/mig")
        assert not any(m["invalidated"] for m in live) and len(live) < len(listed)

        shown = await cli_json(*mem, "show", "/tasks/mig/result")
        assert json.loads(shown["content"])["status"] == "accepted" and shown["author"] == "dreamer"

        history = await cli_json(*mem, "history", "/tasks/mig/rounds/1/cand/0")
        assert [h["version"] for h in history] == [1, 2] and history[-1]["invalidated"]

        edges = await cli_json(*mem, "graph", "mig")
        kinds = {e["kind"] for e in edges}
        assert {"derived-from", "refines", "rejected-by", "supports"} <= kinds
        assert {"src": "/tasks/mig/rounds/2", "kind": "refines", "dst": "/tasks/mig/rounds/1"} in edges

        lessons = await cli_json(*mem, "lessons")
        assert lessons and {x["topic"] for x in lessons} >= {"missing_required"}

        record = await cli_json(*mem, "dream")
        assert record["status"] == "completed" and record["mode"] == "new_version"
        assert await asyncio.to_thread(Path(record["output"]).is_dir)

        exported = await cli_json(*mem, "export", str(tmp_path / "mem.jsonl"))
        mode = stat.S_IMODE((tmp_path / "mem.jsonl").stat().st_mode)
        assert mode == 0o600 and exported["versions"] > 10
        rows = [json.loads(line) for line in (tmp_path / "mem.jsonl").read_text().splitlines()]
        assert {r["type"] for r in rows} >= {"memory", "edge"}

        listed = await cli_json("task", cfg, "list", "--json")
        assert {"task_id": "mig", "state": "done"}.items() <= next(i for i in listed if i["task_id"] == "mig").items()
        assert await cli_json("task", cfg, "list", "--state", "queued", "--json") == []
        info = await cli_json("task", cfg, "--json", "show", "mig")
        assert info["state"] == "done" and info["rounds"] == 2 and info["agent"] == "dreamer"
        unknown = await asyncio.to_thread(run_cli, "task", cfg, "show", "nope", "--json")
        assert unknown.returncode == 1 and json.loads(unknown.stdout)["state"] == "unknown"
        said = await asyncio.to_thread(run_cli, "task", cfg, "show", "nope")
        assert said.returncode == 1 and "no dreamer knows this task" in said.stderr
        finished = await asyncio.to_thread(run_cli, "task", cfg, "pause", "mig")
        assert finished.returncode == 1 and "mig: finished (done after 2 round(s)); there is nothing to pause" \
            in finished.stderr
        done = await asyncio.to_thread(run_cli, "task", cfg, "cancel", "mig")
        assert done.returncode == 1 and "mig: finished (accepted); there is nothing to cancel" in done.stderr
        helped = await asyncio.to_thread(run_cli, "memory", cfg, "lessons", "--help")
        assert helped.returncode == 0 and "--topic" in helped.stdout and "memory CONFIG lessons" in helped.stdout
        helped = await asyncio.to_thread(run_cli, "task", cfg, "show", "-h")
        assert helped.returncode == 0 and "Usage: reverie task CONFIG show [OPTIONS] TASK_ID" in helped.stdout

        missing = await asyncio.to_thread(run_cli, "memory", cfg, "--agent", "ghost", "ls")
        assert missing.returncode == 2 and "no agent named 'ghost'" in missing.stderr
