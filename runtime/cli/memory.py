"""`reverie memory CONFIG --agent NAME …`: read an agent's memory, run a consolidation dream,
check (and repair) it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import msgspec

from reverie.agents.claude.client import ClaudeFatal, ClaudeOptions, check_options
from reverie.agents.claude.consolidator import ClaudeConsolidator

from ..config import load_config
from ..errors import DreamFailed, NoMemory, NoSuchAgent, NoSuchMemory, OptionError, ReverieError
from ..memory import Damage, MemoryStore, Quarantined
from ..memory.dreams import Consolidator, dream
from .groups import ConfigGroup

__all__ = ["check", "dream_command", "export", "graph", "history", "lessons", "ls", "memory", "show"]


@contextmanager
def _store(config: Path, agent: str, data_dir: Path | None) -> Iterator[MemoryStore]:
    cfg = load_config(config, data_dir=data_dir, check_agents=False)
    try:
        cfg.agent(agent)
    except KeyError:
        raise NoSuchAgent(str(config), agent, [a.name for a in cfg.agents]) from None
    directory = cfg.data_path / agent
    if not (directory / "data.key").exists():
        raise NoMemory(agent, directory)
    with MemoryStore.open(directory, agent=agent) as store:
        yield store


def _out(obj: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(msgspec.to_builtins(obj), indent=None) if as_json else text)


def _content(raw: bytes) -> Any:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": msgspec.json.encode(raw).decode().strip('"')}


@click.group(cls=ConfigGroup)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--agent", required=True, help="The agent whose memory to open.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Override the config's data_dir.")
@click.pass_context
def memory(ctx: click.Context, config: Path, agent: str, as_json: bool, data_dir: Path | None) -> None:
    """Inspect an agent's memory (it may be running: LMDB allows concurrent readers)."""
    ctx.obj = (config, agent, data_dir, as_json)


@memory.command()
@click.argument("prefix", default="/")
@click.option("--all", "include_invalid", is_flag=True, help="Include invalidated (pruned) memories.")
@click.pass_obj
def ls(obj: tuple[Any, ...], prefix: str, include_invalid: bool) -> None:
    """List memories under PREFIX."""
    config, agent, data_dir, as_json = obj
    with _store(config, agent, data_dir) as store:
        items = store.list(prefix, include_invalid=include_invalid)
    _out(items, as_json, "\n".join(f"{m.path}  v{m.version}  {m.size}B  {m.author}"
                                   + ("  [invalid]" if m.invalidated else "") for m in items))


@memory.command()
@click.argument("path")
@click.option("--version", "version", type=int, help="A specific version (default: latest).")
@click.pass_obj
def show(obj: tuple[Any, ...], path: str, version: int | None) -> None:
    """Print one memory's content."""
    config, agent, data_dir, as_json = obj
    with _store(config, agent, data_dir) as store:
        v = store.get_version(path, version) if version else store.get(path)
    if v is None:
        raise NoSuchMemory(path, version)
    data = {"path": v.path, "version": v.version, "author": v.author, "created_at": v.created_at,
            "sha256": v.sha256, "invalidated": v.invalidated, "reason": v.reason, "content": _content(v.content)}
    _out(data, as_json, data["content"] if isinstance(data["content"], str) else json.dumps(data["content"]))


@memory.command()
@click.argument("path")
@click.pass_obj
def history(obj: tuple[Any, ...], path: str) -> None:
    """Every version of PATH, oldest first."""
    config, agent, data_dir, as_json = obj
    with _store(config, agent, data_dir) as store:
        items = store.history(path)
    _out(items, as_json, "\n".join(f"v{m.version}  {m.sha256[:12]}  {m.author}  {m.created_at:.3f}"
                                   + ("  [invalid]" if m.invalidated else "") for m in items))


@memory.command()
@click.argument("task_id")
@click.pass_obj
def graph(obj: tuple[Any, ...], task_id: str) -> None:
    """The task -> round -> candidate -> verdict graph of TASK_ID, as edges."""
    config, agent, data_dir, as_json = obj
    root = f"/tasks/{task_id}"
    with _store(config, agent, data_dir) as store:
        nodes = store.walk(root, direction="in") + [p for m in store.list(root + "/") for p in [m.path]]
        edges = {(e.src, e.kind.value, e.dst) for n in dict.fromkeys(nodes) for e in store.edges(n)}
    rows = sorted(edges)
    _out([{"src": s, "kind": k, "dst": d} for s, k, d in rows], as_json,
         "\n".join(f"{s} -{k}-> {d}" for s, k, d in rows))


@memory.command()
@click.option("--topic", help="Only lessons of this topic.")
@click.pass_obj
def lessons(obj: tuple[Any, ...], topic: str | None) -> None:
    """Lessons learned from critics' rejections."""
    config, agent, data_dir, as_json = obj
    with _store(config, agent, data_dir) as store:
        items = store.lessons(topic)
    _out(items, as_json, "\n".join(f"{x.topic:<16} w={x.weight:g}  {x.reason.text}" for x in items))


@memory.command(name="dream")
@click.option("--in-place", is_flag=True, help="Update this store instead of writing a new version.")
@click.option("--instructions", default="", help="Guidance for the consolidator (up to 4,096 characters).")
@click.option("--claude", is_flag=True, help="Claude plans the dream (the agent's consolidator_options, else its "
                                            "Claude reasoner_options; the key from ANTHROPIC_API_KEY).")
@click.pass_obj
def dream_command(obj: tuple[Any, ...], in_place: bool, instructions: str, claude: bool) -> None:
    """Consolidate: merge duplicate lessons, drop dead branches, write per-topic summaries."""
    config, agent, data_dir, as_json = obj
    with _store(config, agent, data_dir) as store:  # first: it says when there is no such agent
        consolidator = _claude_consolidator(config, agent, data_dir) if claude else None
        try:
            record = dream(store, in_place=in_place, instructions=instructions, consolidator=consolidator)
        except ReverieError:
            raise
        except Exception as exc:  # Claude unreachable after its retries: recorded as a failed dream
            raise DreamFailed(exc) from exc
    c = record.changes
    _out(record, as_json, f"dream {record.id} {record.status.value} ({record.mode.value}) -> {record.output}\n"
         f"  read {record.usage.memories_read} memories, {record.usage.lessons_read} lessons in "
         f"{record.usage.seconds:.2f}s; merged {c.lessons_merged} duplicate lessons into "
         f"{c.merged_lessons_written}, dropped {c.branches_dropped} dead branches, "
         f"wrote {c.summaries_written} summaries")


def _claude_consolidator(config: Path, agent: str, data_dir: Path | None) -> Consolidator:
    options = load_config(config, data_dir=data_dir, check_agents=False).agent(agent).options
    raw = (options.get("consolidator_options") if options.get("consolidator") == "claude"
           else options.get("reasoner_options") if options.get("reasoner") == "anthropic" else None) or {}
    try:
        claude = msgspec.convert(raw, ClaudeOptions)
        check_options(claude)
    except (msgspec.ValidationError, ClaudeFatal) as exc:
        raise OptionError("--claude", str(exc)) from None
    return ClaudeConsolidator(claude)


@memory.command()
@click.option("--repair", is_flag=True, help="Move the damaged values into the quarantine.")
@click.pass_context
def check(ctx: click.Context, repair: bool) -> None:
    """Open every stored value; list those that fail (path, error). Exits 1 if any is damaged.

    With --repair they are moved into the quarantine (their sealed bytes kept, see `quarantined`
    in --json) and the store is verified again: exit 0 means the agent starts clean."""
    config, agent, data_dir, as_json = ctx.obj
    with _store(config, agent, data_dir) as store:
        found = store.verify()
        moved = store.repair() if repair and found.damaged else []
        after = store.verify() if moved else found
        held = store.quarantined()
    bad = after.damaged
    report = {"checked": found.checked, "damaged": [_damage(d) for d in found.damaged],
              "moved": [_damage(q) | {"seq": q.seq} for q in moved], "clean": not bad,
              "quarantined": [_damage(q) | {"seq": q.seq, "at": q.at, "by": q.by} for q in held]}
    lines = [f"damaged: {d.where} ({d.db}): {d.error}" for d in found.damaged]
    lines += [f"moved to quarantine #{q.seq}: {q.where}" for q in moved]
    lines.append(f"{found.checked} values checked: " + (
        f"{len(bad)} damaged" + ("" if repair else " (--repair moves them into the quarantine)") if bad
        else "clean" + (f" after moving {len(moved)}" if moved else "")))
    if held:
        lines.append(f"{len(held)} value(s) in quarantine, the newest: #{held[-1].seq} {held[-1].where}")
    _out(report, as_json, "\n".join(lines))
    if bad:
        ctx.exit(1)


def _damage(d: Damage | Quarantined) -> dict[str, Any]:
    return {"where": d.where, "db": d.db, "key": _content(d.key), "error": d.error,
            "size": len(d.sealed)}


@memory.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def export(obj: tuple[Any, ...], file: Path) -> None:
    """Write every memory (all versions), edge, lesson and checkpoint as JSON lines to FILE.

    The export is plaintext: it is created with 0600 permissions."""
    config, agent, data_dir, as_json = obj
    count = 0
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with _store(config, agent, data_dir) as store, os.fdopen(fd, "w") as out:
        for m in store.list("/"):
            for info in store.history(m.path):
                v = store.get_version(m.path, info.version)
                assert v is not None
                row = {"type": "memory", **msgspec.to_builtins(info), "content": _content(v.content)}
                out.write(json.dumps(row) + "\n")
                count += 1
            for e in store.edges(m.path):
                out.write(json.dumps({"type": "edge", **msgspec.to_builtins(e)}) + "\n")
        for task_id in store.checkpoints():
            out.write(json.dumps({"type": "checkpoint", "task_id": task_id}) + "\n")
    _out({"file": str(file), "versions": count}, as_json, f"exported {count} versions to {file}")
