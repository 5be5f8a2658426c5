"""Claude's memory tool (`memory_20250818`) over an agent's LMDB memory.

Claude sees `/memories/<rest>`; that is the memory at `<root><rest>`. A memory is a file;
directories are implied by path prefixes. Every mutating command is one atomic commit
authored by `author`, so history says which model wrote what, and when. Deletes are
tombstones (`Batch.invalidate`): history keeps every version. Edits are compare-and-set on
the hash of the content read, so a concurrent writer (a dream, gossip, a peer tool) is never
silently overwritten.

Semantics and messages mirror the SDK's `BetaAsyncLocalFilesystemMemoryTool` (create is
exclusive there too), except that a failure is returned as `Error: <message>` (the documented
form) instead of raised: a bad tool input must never break the agent's loop.
"""

from __future__ import annotations

from typing import cast

from anthropic.lib.tools import BetaAsyncAbstractMemoryTool, ToolError
from anthropic.types.beta import (
    BetaMemoryTool20250818Command,
    BetaMemoryTool20250818CreateCommand,
    BetaMemoryTool20250818DeleteCommand,
    BetaMemoryTool20250818InsertCommand,
    BetaMemoryTool20250818RenameCommand,
    BetaMemoryTool20250818StrReplaceCommand,
    BetaMemoryTool20250818ViewCommand,
)

from reverie.runtime.memory import (
    Batch,
    EdgeKind,
    Memory,
    MemoryError,
    MemoryInfo,
    PreconditionFailed,
    Version,
)

from .memory_view import LINE_NUMBER_WIDTH, MAX_LINES, listing, numbered, size, text_of

__all__ = [
    "MAX_LINES",
    "PREFIX",
    "READ_ONLY_PREFIXES",
    "MemoryTool",
]

PREFIX = "/memories"
_COMMANDS = ("view", "create", "str_replace", "insert", "delete", "rename")

READ_ONLY_PREFIXES: tuple[str, ...] = (
    "/gossip/",     # signed feed blocks, heads, fork proofs: the feed verifier is rebuilt from them
    "/peers/",      # what peers shared in their signed feeds: an edit would forge a peer's word
    "/lessons/",    # critics' lessons (msgpack, recall-indexed): only Batch.lesson keeps the index right
    "/tasks/",      # the dreamer's task traces and results (a redelivered task is answered from them)
    "/dreams/",     # consolidation dream records (status history of each dream)
    "/summaries/",  # rewritten by every consolidation dream: an edit would be silently replaced
    "/recent-results/",  # the ring a restarted dreamer checks against the results stream
)


class MemoryTool(BetaAsyncAbstractMemoryTool):
    """The memory tool over `memory`; pass it to `client.beta.messages.tool_runner(tools=[...])`."""

    def __init__(self, memory: Memory, *, author: str, root: str = "/",
                 read_only_prefixes: tuple[str, ...] = READ_ONLY_PREFIXES,
                 max_file_bytes: int = 256 * 1024, runtime_view: str | None = None) -> None:
        """`root`: where Claude's `/memories` lives in the memory. `runtime_view` (with a root of
        Claude's own, say "/claude/"): the name under `/memories` at which the runtime's records
        (the read-only namespaces) are shown, read-only, so Claude's natural names
        (`/memories/tasks/todo.md`) never collide with them."""
        super().__init__()
        if not author:
            raise ValueError("author names who writes, e.g. 'claude:claude-sonnet-4-5'")
        parts = root.strip("/").split("/") if root.strip("/") else []
        if not root.startswith("/") or "//" in root or any(p in ("", ".", "..") or "\0" in p for p in parts):
            raise ValueError(f"root is a normalised memory path prefix, not {root!r}")
        self.memory = memory
        self.author = author
        self.root = "/" + "".join(p + "/" for p in parts)
        self.read_only = tuple(p if p.endswith("/") else p + "/" for p in read_only_prefixes)
        self.max_file_bytes = max_file_bytes
        if runtime_view is not None and (not runtime_view or "/" in runtime_view or runtime_view in (".", "..")):
            raise ValueError(f"runtime_view is one path segment, not {runtime_view!r}")
        self.runtime_view = runtime_view

    # ------------------------------------------------------------------ entry points

    async def call(self, input: object) -> str:
        if not isinstance(input, dict):
            return f"Error: The tool input must be an object, got: {type(input).__name__}"
        if input.get("command") not in _COMMANDS:
            return f"Error: Unknown command: {input.get('command')!r} (one of: {', '.join(_COMMANDS)})"
        return cast(str, await super().call(input))  # every handler returns str

    async def execute(self, command: BetaMemoryTool20250818Command) -> str:
        try:
            return cast(str, await super().execute(command))
        except (ToolError, MemoryError) as exc:  # MemoryError: a path too long, a closed memory...
            return f"Error: {exc}"

    # ------------------------------------------------------------------ commands

    async def view(self, command: BetaMemoryTool20250818ViewCommand) -> str:
        """A file if there is one at the path (a memory path can also prefix others), else a directory."""
        path = command.path
        rest = self._resolve(path)
        shown = PREFIX + "/" + rest if rest else PREFIX
        if rest and (version := await self._file(rest)) is not None:
            return numbered(shown, text_of(version, path), command.view_range)
        infos = await self.memory.list(self._dir(rest), include_invalid=False)
        if self._in_view(rest):
            infos = [i for i in infos if i.path.startswith(self.read_only)]
        if rest and not infos:
            raise ToolError(f"The path {path} does not exist. Please provide a valid path.")
        shown_dir = listing(shown, self._dir(rest), infos)
        if not rest and self.runtime_view is not None:
            records = [i for i in await self.memory.list("/", include_invalid=False)
                       if i.path.startswith(self.read_only)]
            shown_dir += (f"\n{size(sum(i.size for i in records))}\t{PREFIX}/{self.runtime_view}/ (read-only: "
                          f"the runtime's records: {', '.join(p.strip('/') for p in self.read_only)})")
        return shown_dir

    async def create(self, command: BetaMemoryTool20250818CreateCommand) -> str:
        path = command.path
        rest = self._resolve(path)
        data = self._encode(path, _arg(command.file_text, "file_text"))
        if not rest:
            raise ToolError(f"File {path} already exists")
        self._writable(self._mem(rest))
        heads, _ = await self.memory.run(self._scan, rest)
        if _live(heads):  # a file, or a directory (files under it)
            raise ToolError(f"File {path} already exists")
        await self._check_parents(path, rest)
        batch = self._batch()
        tomb = heads.get(self._mem(rest))  # recreating a deleted file: compare-and-set on its tombstone
        batch.put(self._mem(rest), data, expect=None if tomb is None else tomb.sha256)
        await self._commit(batch, path)
        return f"File created successfully at: {path}"

    async def str_replace(self, command: BetaMemoryTool20250818StrReplaceCommand) -> str:
        path = command.path
        rest = self._resolve(path)
        old, new = _arg(command.old_str, "old_str"), _arg(command.new_str, "new_str")
        version = await self._existing_file(path, rest)
        content = text_of(version, path)
        count = content.count(old)
        if count == 0:
            raise ToolError(f"No replacement was performed, old_str `{old}` did not appear verbatim in {path}.")
        if count > 1:
            lines: list[int] = []
            start = 0
            while (pos := content.find(old, start)) != -1:
                lines.append(content[:pos].count("\n") + 1)
                start = pos + 1
            raise ToolError(f"No replacement was performed. Multiple occurrences of old_str `{old}` in lines: "
                            f"{', '.join(map(str, lines))}. Please ensure it is unique")
        changed = content[:content.find(old)].count("\n")
        new_content = content.replace(old, new)
        await self._rewrite(path, version, new_content)
        new_lines = new_content.split("\n")
        snippet = [f"{str(n).rjust(LINE_NUMBER_WIDTH)}\t{new_lines[n - 1]}"
                   for n in range(max(0, changed - 2) + 1, min(len(new_lines), changed + 3) + 1)]
        return ("The memory file has been edited. Here is the snippet showing the change (with line numbers):\n"
                + "\n".join(snippet))

    async def insert(self, command: BetaMemoryTool20250818InsertCommand) -> str:
        path = command.path
        rest = self._resolve(path)
        text, at = _arg(command.insert_text, "insert_text"), command.insert_line
        version = await self._existing_file(path, rest)
        lines = text_of(version, path).split("\n")
        if lines[-1] == "":  # like the SDK: split on LF only, without the empty tail of a last newline
            lines.pop()
        if not isinstance(at, int) or isinstance(at, bool) or at < 0 or at > len(lines):
            raise ToolError(f"Invalid `insert_line` parameter: {at}. It should be within the range [0, {len(lines)}].")
        lines.insert(at, text.rstrip("\n"))
        new_content = "\n".join(lines)
        await self._rewrite(path, version, new_content if new_content.endswith("\n") else new_content + "\n")
        return f"The file {path} has been edited."

    async def delete(self, command: BetaMemoryTool20250818DeleteCommand) -> str:
        path = command.path
        rest = self._resolve(path)
        if not rest:
            raise ToolError("Cannot delete the /memories directory itself")
        heads = (await self.memory.run(self._scan, rest))[0]
        targets = _live(heads)
        if not targets:
            raise ToolError(f"The path {path} does not exist")
        for target in targets:
            self._writable(target)
        batch = self._batch()  # a whole directory in one commit, all or nothing
        for target in targets:
            batch.invalidate(target, f"deleted by {self.author} with the memory tool", expect=heads[target].sha256)
        await self._commit(batch, path)
        return f"Successfully deleted {path}"

    async def rename(self, command: BetaMemoryTool20250818RenameCommand) -> str:
        old_path, new_path = command.old_path, command.new_path
        old, new = self._resolve(old_path), self._resolve(new_path)
        if not old:
            raise ToolError("Cannot rename the /memories directory itself")
        dests, _ = await self.memory.run(self._scan, new) if new else ({}, {})
        if not new or _live(dests):
            raise ToolError(f"The destination {new_path} already exists")
        if new.startswith(old + "/"):
            raise ToolError(f"Cannot move {old_path} into itself ({new_path})")
        sources, contents = await self.memory.run(self._scan, old, True)
        if not contents:
            raise ToolError(f"The path {old_path} does not exist")
        moves = [(src, self._mem(new) + src[len(self._mem(old)):]) for src in contents]
        for src, dst in moves:
            self._writable(src)
            self._writable(dst)
        await self._check_parents(new_path, new)
        batch = self._batch()  # the new paths and the old paths' tombstones in one commit
        for src, dst in moves:
            tomb = dests.get(dst)
            batch.put(dst, contents[src], expect=None if tomb is None else tomb.sha256)
            batch.link(dst, EdgeKind.DERIVED_FROM, src)
            batch.invalidate(src, f"renamed to {dst} by {self.author} with the memory tool",
                             expect=sources[src].sha256)
        await self._commit(batch, new_path)
        return f"Successfully renamed {old_path} to {new_path}"

    # ------------------------------------------------------------------ helpers

    def _resolve(self, path: object) -> str:
        """The part after `/memories/` ('' for /memories itself), or ToolError; touches nothing."""
        if not isinstance(path, str):
            raise ToolError(f"Path must be a string, got: {path!r}")
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise ToolError(f"Path {path!r} is not valid UTF-8") from None
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            raise ToolError(f"Path must start with /memories, got: {path}")
        rest = path[len(PREFIX) + 1:]
        rest = rest[:-1] if rest.endswith("/") else rest
        if any(p in ("..", ".") for p in rest.split("/")):
            stack: list[str] = []
            for part in rest.split("/"):
                if part == "..":
                    if not stack:
                        raise ToolError(f"Path {path} would escape /memories directory")
                    stack.pop()
                elif part not in (".", ""):
                    stack.append(part)
            raise ToolError(f"Path {path} is not normalised: write {'/'.join([PREFIX, *stack])} "
                            f"(paths hold no '.' or '..' parts)")
        if "//" in path or any(ch in path for ch in "\\\0") or any(ord(ch) < 32 for ch in path) \
                or (rest and any(p in ("", ".") for p in rest.split("/"))):
            raise ToolError(f"Path {path!r} is not a normalised path (no '//', '.', '\\', NUL or control characters)")
        return rest

    def _in_view(self, rest: str) -> bool:
        return self.runtime_view is not None and (rest == self.runtime_view or rest.startswith(self.runtime_view + "/"))

    def _mem(self, rest: str) -> str:
        if self._in_view(rest):
            assert self.runtime_view is not None
            return "/" + rest[len(self.runtime_view) + 1:]
        return self.root + rest

    def _dir(self, rest: str) -> str:
        if self._in_view(rest):
            return self._mem(rest) + "/" if rest != self.runtime_view else "/"
        return self.root + rest + "/" if rest else self.root

    def _shown(self, mem: str) -> str:
        if self.runtime_view is not None and not mem.startswith(self.root):
            return f"{PREFIX}/{self.runtime_view}{mem}"
        return f"{PREFIX}/{mem[len(self.root):]}"

    def _writable(self, mem: str) -> None:
        if self.runtime_view is not None and not mem.startswith(self.root):
            raise ToolError(f"The path {self._shown(mem)} is read-only: {PREFIX}/{self.runtime_view}/ shows the "
                            f"runtime's records; write your own files anywhere else under {PREFIX}")
        for prefix in self.read_only:
            if mem.startswith(prefix) or mem == prefix[:-1]:
                raise ToolError(f"The path {self._shown(mem)} is read-only: {prefix} is managed by the runtime")

    def _encode(self, path: str, text: str) -> bytes:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise ToolError(f"The content for {path} is not valid UTF-8 text") from None
        if "\0" in text:
            raise ToolError(f"The content for {path} is not text (it contains NUL)")
        if len(data) > self.max_file_bytes:
            raise ToolError(f"File {path} would be {len(data)} bytes; memory files are at most {self.max_file_bytes}")
        return data

    def _batch(self) -> Batch:
        return self.memory.store.batch(self.author)

    async def _file(self, rest: str) -> Version | None:
        version = await self.memory.get(self._mem(rest))
        return None if version is None or version.invalidated else version

    async def _existing_file(self, path: str, rest: str) -> Version:
        version = await self._file(rest) if rest else None
        if version is not None:
            self._writable(version.path)
            return version
        if not rest or await self.memory.list(self._dir(rest), include_invalid=False):
            raise ToolError(f"The path {path} is not a file.")
        raise ToolError(f"The path {path} does not exist. Please provide a valid path.")

    def _scan(self, rest: str, content: bool = False) -> tuple[dict[str, MemoryInfo], dict[str, bytes]]:
        """Every head at and under `rest` (tombstones too) and, if asked, the live contents.

        Runs on the memory thread, so no other memory call of this process interleaves."""
        store, mem, below = self.memory.store, self._mem(rest), self._dir(rest)

        def mine(p: str) -> bool:
            return (p == mem and bool(rest)) or p.startswith(below)

        heads = {i.path: i for i in store.list(mem) if mine(i.path)}
        live = set(_live(heads))
        return heads, {p: c for p, c in store.contents(mem) if p in live} if content else {}

    async def _check_parents(self, path: str, rest: str) -> None:
        parts = rest.split("/")
        for i in range(1, len(parts)):
            if await self._file("/".join(parts[:i])) is not None:
                raise ToolError(f"Cannot create {path}: {PREFIX}/{'/'.join(parts[:i])} is a file")

    async def _rewrite(self, path: str, version: Version, content: str) -> None:
        batch = self._batch()
        batch.put(version.path, self._encode(path, content), expect=version.sha256)
        await self._commit(batch, path)

    async def _commit(self, batch: Batch, path: str) -> None:
        try:
            await self.memory.commit(batch)
        except PreconditionFailed:
            raise ToolError(f"{path} was changed by another writer since it was read; nothing was written. "
                            f"View it again and retry.") from None


def _live(heads: dict[str, MemoryInfo]) -> list[str]:
    return [p for p, info in heads.items() if not info.invalidated]


def _arg(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ToolError(f"Parameter `{name}` must be a string, got: {value!r}")
    return value
