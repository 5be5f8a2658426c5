"""Claude's memory tool over a real LMDB memory: every command as Claude's tool_use input
arrives (`tool.call({...})`), versions and authorship, tombstones, refusals that touch nothing,
and compare-and-set against a concurrent writer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reverie.agents.claude.memory_tool import READ_ONLY_PREFIXES, MemoryTool
from reverie.runtime.memory import Edge, EdgeKind, Memory

AUTHOR = "claude:claude-sonnet-4-5"


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[Memory]:
    async with await Memory.open(tmp_path / "mem", agent="dreamer") as m:
        yield m


@pytest.fixture
def tool(memory: Memory) -> MemoryTool:
    return MemoryTool(memory, author=AUTHOR, root="/claude")


async def snapshot(memory: Memory) -> tuple[object, ...]:
    """Every head and every version of every path: equal before and after a refused command."""
    heads = await memory.list("/")
    return tuple(heads), tuple([tuple(await memory.history(h.path)) for h in heads])


async def text(memory: Memory, path: str) -> str | None:
    version = await memory.get(path)
    return None if version is None or version.invalidated else version.text


async def test_tool_param_and_create(memory: Memory, tool: MemoryTool) -> None:
    assert tool.to_dict() == {"type": "memory_20250818", "name": "memory"}
    assert await tool.call({"command": "create", "path": "/memories/notes/a.md", "file_text": "hello\n"}) \
        == "File created successfully at: /memories/notes/a.md"
    version = await memory.get("/claude/notes/a.md")
    assert version is not None and version.text == "hello\n"
    assert (version.version, version.author) == (1, AUTHOR)
    # exclusive, as the SDK's own implementation: nothing is overwritten
    assert await tool.call({"command": "create", "path": "/memories/notes/a.md", "file_text": "x"}) \
        == "Error: File /memories/notes/a.md already exists"
    assert await tool.call({"command": "create", "path": "/memories/notes", "file_text": "x"}) \
        == "Error: File /memories/notes already exists"
    assert await tool.call({"command": "create", "path": "/memories/notes/a.md/b", "file_text": "x"}) \
        == "Error: Cannot create /memories/notes/a.md/b: /memories/notes/a.md is a file"
    assert [h.version for h in await memory.history("/claude/notes/a.md")] == [1]
    # a deleted file can be created again: a new version after its tombstone
    await tool.call({"command": "delete", "path": "/memories/notes/a.md"})
    assert await tool.call({"command": "create", "path": "/memories/notes/a.md", "file_text": "again"}) \
        == "File created successfully at: /memories/notes/a.md"
    history = await memory.history("/claude/notes/a.md")
    assert [(h.version, h.invalidated, h.author) for h in history] == \
        [(1, False, AUTHOR), (2, True, AUTHOR), (3, False, AUTHOR)]
    assert await text(memory, "/claude/notes/a.md") == "again"


async def test_view_directory_two_levels_and_file_ranges(memory: Memory, tool: MemoryTool) -> None:
    files = {"/memories/notes/a.md": "one\ntwo\nthree\n", "/memories/notes/deep/x/y.md": "y" * 10,
             "/memories/top.txt": "t" * 2048, "/memories/.hidden": "h", "/memories/notes/.draft": "d"}
    for path, body in files.items():
        assert (await tool.call({"command": "create", "path": path, "file_text": body})).startswith("File created")
    await memory.put("/elsewhere", "not under the root")
    assert await tool.call({"command": "view", "path": "/memories"}) == (
        "Here're the files and directories up to 2 levels deep in /memories, excluding hidden items:\n"
        "2.0K\t/memories\n"
        "25B\t/memories/notes/\n"
        "14B\t/memories/notes/a.md\n"
        "10B\t/memories/notes/deep/\n"
        "2K\t/memories/top.txt")
    assert await tool.call({"command": "view", "path": "/memories/notes/deep"}) == (
        "Here're the files and directories up to 2 levels deep in /memories/notes/deep, excluding hidden items:\n"
        "10B\t/memories/notes/deep\n10B\t/memories/notes/deep/x/\n10B\t/memories/notes/deep/x/y.md")
    assert await tool.call({"command": "view", "path": "/memories/notes/a.md"}) == (
        "Here's the content of /memories/notes/a.md with line numbers:\n"
        "     1\tone\n     2\ttwo\n     3\tthree\n     4\t")
    assert await tool.call({"command": "view", "path": "/memories/notes/a.md", "view_range": [2, 3]}) == (
        "Here's the content of /memories/notes/a.md with line numbers:\n     2\ttwo\n     3\tthree")
    assert await tool.call({"command": "view", "path": "/memories/notes/a.md", "view_range": [3, -1]}) == (
        "Here's the content of /memories/notes/a.md with line numbers:\n     3\tthree\n     4\t")
    assert await tool.call({"command": "view", "path": "/memories/nope"}) == \
        "Error: The path /memories/nope does not exist. Please provide a valid path."


async def test_view_of_an_empty_root_and_of_non_text(memory: Memory, tool: MemoryTool) -> None:
    assert await tool.call({"command": "view", "path": "/memories"}) == (
        "Here're the files and directories up to 2 levels deep in /memories, excluding hidden items:\n0B\t/memories")
    await memory.put("/claude/blob", b"\x93\xff\x00\x01")
    assert await tool.call({"command": "view", "path": "/memories/blob"}) == \
        "Error: The file /memories/blob is not a text file"


async def test_str_replace(memory: Memory, tool: MemoryTool) -> None:
    body = "l1\nl2 cat\nl3\nl4 dog\nl5\nl6 dog\nl7\n"
    await tool.call({"command": "create", "path": "/memories/pets", "file_text": body})
    assert await tool.call({"command": "str_replace", "path": "/memories/pets", "old_str": "cat", "new_str": "lynx"}) \
        == ("The memory file has been edited. Here is the snippet showing the change (with line numbers):\n"
            "     1\tl1\n     2\tl2 lynx\n     3\tl3\n     4\tl4 dog")
    version = await memory.get("/claude/pets")
    assert version is not None and version.text == body.replace("cat", "lynx")
    assert (version.version, version.author) == (2, AUTHOR)
    before = await snapshot(memory)
    assert await tool.call({"command": "str_replace", "path": "/memories/pets", "old_str": "cow", "new_str": "x"}) \
        == "Error: No replacement was performed, old_str `cow` did not appear verbatim in /memories/pets."
    assert await tool.call({"command": "str_replace", "path": "/memories/pets", "old_str": "dog", "new_str": "x"}) \
        == ("Error: No replacement was performed. Multiple occurrences of old_str `dog` in lines: 4, 6. "
            "Please ensure it is unique")
    assert await tool.call({"command": "str_replace", "path": "/memories/none", "old_str": "a", "new_str": "b"}) \
        == "Error: The path /memories/none does not exist. Please provide a valid path."
    assert await tool.call({"command": "str_replace", "path": "/memories", "old_str": "a", "new_str": "b"}) \
        == "Error: The path /memories is not a file."
    assert await snapshot(memory) == before


async def test_insert(memory: Memory, tool: MemoryTool) -> None:
    await tool.call({"command": "create", "path": "/memories/list", "file_text": "b\nc\nd"})
    assert await tool.call({"command": "insert", "path": "/memories/list", "insert_line": 0, "insert_text": "a\n"}) \
        == "The file /memories/list has been edited."
    assert await text(memory, "/claude/list") == "a\nb\nc\nd\n"
    await tool.call({"command": "insert", "path": "/memories/list", "insert_line": 4, "insert_text": "e"})
    assert await text(memory, "/claude/list") == "a\nb\nc\nd\ne\n"
    assert [(h.version, h.author) for h in await memory.history("/claude/list")] == \
        [(1, AUTHOR), (2, AUTHOR), (3, AUTHOR)]
    before = await snapshot(memory)
    for line in (6, -1):
        assert await tool.call({"command": "insert", "path": "/memories/list", "insert_line": line,
                                "insert_text": "x"}) == \
            f"Error: Invalid `insert_line` parameter: {line}. It should be within the range [0, 5]."
    assert await snapshot(memory) == before


async def test_delete_file_and_directory_keep_history(memory: Memory, tool: MemoryTool) -> None:
    for path in ("/memories/a", "/memories/d/x", "/memories/d/e/y", "/memories/dz"):
        await tool.call({"command": "create", "path": path, "file_text": path})
    assert await tool.call({"command": "delete", "path": "/memories/a"}) == "Successfully deleted /memories/a"
    tomb = await memory.get("/claude/a")
    assert tomb is not None and tomb.invalidated and tomb.author == AUTHOR and tomb.version == 2
    first = await memory.get_version("/claude/a", 1)
    assert first is not None and first.text == "/memories/a"  # history kept
    assert await tool.call({"command": "view", "path": "/memories/a"}) == \
        "Error: The path /memories/a does not exist. Please provide a valid path."
    assert await tool.call({"command": "delete", "path": "/memories/d"}) == "Successfully deleted /memories/d"
    x, y = await memory.get("/claude/d/x"), await memory.get("/claude/d/e/y")
    assert x is not None and y is not None and x.invalidated and y.invalidated
    assert x.created_at == y.created_at  # one commit
    assert await text(memory, "/claude/dz") == "/memories/dz"  # a sibling sharing the prefix is not under /d
    assert await tool.call({"command": "delete", "path": "/memories/d"}) == "Error: The path /memories/d does not exist"
    assert await tool.call({"command": "delete", "path": "/memories"}) == \
        "Error: Cannot delete the /memories directory itself"


async def test_rename_file_and_directory(memory: Memory, tool: MemoryTool) -> None:
    await tool.call({"command": "create", "path": "/memories/a", "file_text": "A"})
    assert await tool.call({"command": "rename", "old_path": "/memories/a", "new_path": "/memories/sub/b"}) \
        == "Successfully renamed /memories/a to /memories/sub/b"
    new, old = await memory.get("/claude/sub/b"), await memory.get("/claude/a")
    assert new is not None and (new.text, new.version, new.author) == ("A", 1, AUTHOR)
    assert old is not None and old.invalidated and old.author == AUTHOR
    assert old.reason == f"renamed to /claude/sub/b by {AUTHOR} with the memory tool"
    assert new.created_at == old.created_at  # one commit
    assert await memory.edges("/claude/sub/b") == [Edge("/claude/sub/b", EdgeKind.DERIVED_FROM, "/claude/a")]
    await tool.call({"command": "create", "path": "/memories/sub/c/d", "file_text": "D"})
    assert await tool.call({"command": "rename", "old_path": "/memories/sub", "new_path": "/memories/moved"}) \
        == "Successfully renamed /memories/sub to /memories/moved"
    assert await text(memory, "/claude/moved/b") == "A" and await text(memory, "/claude/moved/c/d") == "D"
    assert await text(memory, "/claude/sub/b") is None and await text(memory, "/claude/sub/c/d") is None
    assert [h.invalidated for h in await memory.history("/claude/sub/b")] == [False, True]
    # back onto its own tombstone: compare-and-set on the tombstone, a new version
    assert (await tool.call({"command": "rename", "old_path": "/memories/moved/b", "new_path": "/memories/a"})) \
        == "Successfully renamed /memories/moved/b to /memories/a"
    assert [h.version for h in await memory.history("/claude/a")] == [1, 2, 3]


async def test_rename_refusals_change_nothing(memory: Memory, tool: MemoryTool) -> None:
    await tool.call({"command": "create", "path": "/memories/a", "file_text": "A"})
    await tool.call({"command": "create", "path": "/memories/b", "file_text": "B"})
    await tool.call({"command": "create", "path": "/memories/d/x", "file_text": "X"})
    before = await snapshot(memory)
    cases = {
        ("/memories/a", "/memories/b"): "Error: The destination /memories/b already exists",
        ("/memories/a", "/memories/d"): "Error: The destination /memories/d already exists",
        ("/memories/a", "/memories"): "Error: The destination /memories already exists",
        ("/memories", "/memories/z"): "Error: Cannot rename the /memories directory itself",
        ("/memories/d", "/memories/d/e"): "Error: Cannot move /memories/d into itself (/memories/d/e)",
        ("/memories/nope", "/memories/z"): "Error: The path /memories/nope does not exist",
        ("/memories/d", "/memories/a/z"): "Error: Cannot create /memories/a/z: /memories/a is a file",
    }
    for (old, new), expected in cases.items():
        assert await tool.call({"command": "rename", "old_path": old, "new_path": new}) == expected
    assert await snapshot(memory) == before


BAD_PATHS = ["/etc/passwd", "/memories/../x", "memories/x", "/memories/a/../../b", "/memories//x",
             "/memories\\x", "/memories/a\\..\\b", "/memories/x\x00", "/memories/\ud800", "/memoriesx",
             "/memories/./x", "/memories/a\nb", "", 42, None]


@pytest.mark.parametrize("root", ["/", "/claude"])
async def test_paths_outside_memories_are_refused_and_touch_nothing(memory: Memory, root: str) -> None:
    tool = MemoryTool(memory, author=AUTHOR, root=root)
    await memory.put("/x", "outside")
    await memory.put("/b", "outside")
    await tool.call({"command": "create", "path": "/memories/a/f", "file_text": "inside"})
    before = await snapshot(memory)
    for bad in BAD_PATHS:
        inputs = [
            {"command": "view", "path": bad},
            {"command": "create", "path": bad, "file_text": "pwned"},
            {"command": "str_replace", "path": bad, "old_str": "outside", "new_str": "pwned"},
            {"command": "insert", "path": bad, "insert_line": 0, "insert_text": "pwned"},
            {"command": "delete", "path": bad},
            {"command": "rename", "old_path": bad, "new_path": "/memories/stolen"},
            {"command": "rename", "old_path": "/memories/a/f", "new_path": bad},
        ]
        for command in inputs:
            result = await tool.call(command)
            assert isinstance(result, str) and result.startswith("Error: "), (command, result)
    assert await snapshot(memory) == before
    assert await tool.call({"command": "view", "path": "/etc/passwd"}) == \
        "Error: Path must start with /memories, got: /etc/passwd"
    assert await tool.call({"command": "view", "path": "memories/x"}) == \
        "Error: Path must start with /memories, got: memories/x"
    for escape in ("/memories/../x", "/memories/a/../../b"):
        assert await tool.call({"command": "view", "path": escape}) == \
            f"Error: Path {escape} would escape /memories directory"


async def test_malformed_input_is_an_error_not_an_exception(memory: Memory, tool: MemoryTool) -> None:
    await tool.call({"command": "create", "path": "/memories/a", "file_text": "a\nb\n"})
    before = await snapshot(memory)
    for raw in ("view /memories", None, {"command": "format"}, {"command": "view"},
                {"command": "create", "path": "/memories/a"},
                {"command": "insert", "path": "/memories/a", "insert_line": "one", "insert_text": "x"},
                {"command": "view", "path": "/memories/a", "view_range": "1-2"},
                {"command": "view", "path": "/memories/a", "view_range": [1, "two"]},
                {"command": "str_replace", "path": "/memories/a", "old_str": "a"},
                {"command": "create", "path": "/memories/" + "x" * 300, "file_text": "too long a path"}):
        result = await tool.call(raw)
        assert isinstance(result, str) and result.startswith("Error: "), (raw, result)
    assert await snapshot(memory) == before


async def test_read_only_prefixes(memory: Memory) -> None:
    tool = MemoryTool(memory, author=AUTHOR)  # root "/": the whole memory, runtime namespaces read-only
    assert "/gossip/" in READ_ONLY_PREFIXES and "/peers/" in READ_ONLY_PREFIXES
    batch = memory.store.batch()
    batch.put("/gossip/alice/head", b"\x01signed")
    batch.put("/peers/bob/accepted/t1", '{"task": "t1"}')
    batch.put("/tasks/t1", '{"id": "t1"}')
    batch.put("/notes/mine", "free")
    await memory.commit(batch)
    before = await snapshot(memory)
    refused = [
        {"command": "create", "path": "/memories/gossip/alice/forged", "file_text": "x"},
        {"command": "create", "path": "/memories/lessons/harmful/x", "file_text": "x"},
        {"command": "str_replace", "path": "/memories/tasks/t1", "old_str": "t1", "new_str": "t2"},
        {"command": "insert", "path": "/memories/peers/bob/accepted/t1", "insert_line": 0, "insert_text": "x"},
        {"command": "delete", "path": "/memories/peers"},
        {"command": "delete", "path": "/memories/tasks/t1"},
        {"command": "rename", "old_path": "/memories/tasks/t1", "new_path": "/memories/notes/t1"},
        {"command": "rename", "old_path": "/memories/notes/mine", "new_path": "/memories/dreams/mine"},
    ]
    for command in refused:
        result = await tool.call(command)
        assert result.startswith("Error: The path /memories/") and "is read-only" in result, (command, result)
    assert await tool.call({"command": "str_replace", "path": "/memories/tasks/t1", "old_str": "t1",
                            "new_str": "t2"}) == "Error: The path /memories/tasks/t1 is read-only: /tasks/ is " \
                                                 "managed by the runtime"
    assert await snapshot(memory) == before
    # readable all the same
    assert await tool.call({"command": "view", "path": "/memories/tasks/t1"}) == \
        'Here\'s the content of /memories/tasks/t1 with line numbers:\n     1\t{"id": "t1"}'
    # a directory holding one read-only memory is refused whole: nothing is deleted
    guarded = MemoryTool(memory, author=AUTHOR, read_only_prefixes=("/notes/keep",))
    await memory.put("/notes/keep/x", "kept")
    before = await snapshot(memory)
    assert await guarded.call({"command": "delete", "path": "/memories/notes"}) == \
        "Error: The path /memories/notes/keep/x is read-only: /notes/keep/ is managed by the runtime"
    assert await snapshot(memory) == before


async def test_size_and_text_limits(memory: Memory) -> None:
    tool = MemoryTool(memory, author=AUTHOR, root="/claude", max_file_bytes=16)
    await tool.call({"command": "create", "path": "/memories/a", "file_text": "0123456789"})
    before = await snapshot(memory)
    assert await tool.call({"command": "create", "path": "/memories/b", "file_text": "x" * 17}) == \
        "Error: File /memories/b would be 17 bytes; memory files are at most 16"
    assert (await tool.call({"command": "str_replace", "path": "/memories/a", "old_str": "0",
                             "new_str": "x" * 8})).startswith("Error: File /memories/a would be 17 bytes")
    assert await tool.call({"command": "create", "path": "/memories/c", "file_text": "nul\x00"}) == \
        "Error: The content for /memories/c is not text (it contains NUL)"
    assert await tool.call({"command": "create", "path": "/memories/c", "file_text": "\ud800"}) == \
        "Error: The content for /memories/c is not valid UTF-8 text"
    assert await snapshot(memory) == before


@pytest.mark.parametrize("command", [
    {"command": "str_replace", "path": "/memories/plan", "old_str": "draft", "new_str": "final"},
    {"command": "insert", "path": "/memories/plan", "insert_line": 1, "insert_text": "step two"},
    {"command": "delete", "path": "/memories/plan"},  # a delete never buries a write it did not see
])
async def test_a_concurrent_write_between_read_and_commit_is_detected(memory: Memory, tool: MemoryTool,
                                                                      command: dict[str, object]) -> None:
    await tool.call({"command": "create", "path": "/memories/plan", "file_text": "draft\n"})
    gate = threading.Event()
    blocked = asyncio.ensure_future(memory.run(gate.wait, 10))  # holds the memory thread
    edit = asyncio.ensure_future(tool.call(command))
    for _ in range(5):
        await asyncio.sleep(0)  # the tool's read is queued behind the gate...
    other = asyncio.ensure_future(memory.put("/claude/plan", "draft, by the dreamer\n", author="dreamer"))
    for _ in range(5):
        await asyncio.sleep(0)  # ...then another writer's put, before the tool can commit
    gate.set()
    await blocked
    await other
    assert await edit == ("Error: /memories/plan was changed by another writer since it was read; nothing was "
                          "written. View it again and retry.")
    history = await memory.history("/claude/plan")
    assert [(h.version, h.author) for h in history] == [(1, AUTHOR), (2, "dreamer")]
    assert await text(memory, "/claude/plan") == "draft, by the dreamer\n"
    # retried on what is there now, it lands
    assert (await tool.call(command)).startswith(("The memory file has been edited", "The file /memories/plan",
                                                  "Successfully"))
    assert [h.author for h in await memory.history("/claude/plan")] == [AUTHOR, "dreamer", AUTHOR]


async def test_root_must_be_a_normalised_prefix(memory: Memory) -> None:
    for bad in ("claude", "/a/../b", "/a//b", "/a/./b"):
        with pytest.raises(ValueError):
            MemoryTool(memory, author=AUTHOR, root=bad)
    assert MemoryTool(memory, author=AUTHOR, root="/claude/").root == "/claude/"
    assert MemoryTool(memory, author=AUTHOR, root="/").root == "/"


async def test_claudes_natural_names_never_collide_and_the_runtimes_records_stay_readable(memory: Memory) -> None:
    """As the reasoner sets it up: Claude's files under /claude/, the runtime's records shown
    read-only under /memories/runtime/."""
    tool = MemoryTool(memory, author=AUTHOR, root="/claude/", runtime_view="runtime")
    await memory.put("/tasks/t1/result", '{"status": "accepted"}')
    await memory.put("/lessons/plan/x", "backup first")
    assert await tool.call({"command": "create", "path": "/memories/tasks/todo.md", "file_text": "check t1\n"}) \
        == "File created successfully at: /memories/tasks/todo.md"
    assert await text(memory, "/claude/tasks/todo.md") == "check t1\n"
    assert await text(memory, "/tasks/t1/result") == '{"status": "accepted"}'  # untouched
    assert await tool.call({"command": "view", "path": "/memories/runtime/tasks/t1/result"}) == \
        'Here\'s the content of /memories/runtime/tasks/t1/result with line numbers:\n     1\t{"status": "accepted"}'
    listing = await tool.call({"command": "view", "path": "/memories"})
    assert "/memories/tasks/todo.md" in listing and "/memories/runtime/ (read-only" in listing
    assert "/memories/claude" not in listing
    before = await snapshot(memory)
    for command in ({"command": "create", "path": "/memories/runtime/tasks/forged", "file_text": "x"},
                    {"command": "delete", "path": "/memories/runtime/tasks/t1/result"},
                    {"command": "str_replace", "path": "/memories/runtime/lessons/plan/x", "old_str": "b",
                     "new_str": "c"}):
        result = await tool.call(command)
        assert result.startswith("Error: The path /memories/runtime/") and "read-only" in result, result
    assert await snapshot(memory) == before
    # only the runtime's namespaces are in the view: Claude's own files are not shown twice
    assert (await tool.call({"command": "view", "path": "/memories/runtime/claude"})).startswith("Error: ")


async def test_a_non_normalised_path_is_refused_as_such_with_its_normal_form(memory: Memory, tool: MemoryTool) -> None:
    assert await tool.call({"command": "view", "path": "/memories/d/../a"}) == \
        "Error: Path /memories/d/../a is not normalised: write /memories/a (paths hold no '.' or '..' parts)"
    assert await tool.call({"command": "view", "path": "/memories/./x"}) == \
        "Error: Path /memories/./x is not normalised: write /memories/x (paths hold no '.' or '..' parts)"
