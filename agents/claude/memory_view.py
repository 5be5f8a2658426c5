"""How the memory tool shows memory to Claude: numbered file views, directory listings and
sizes, formatted as the SDK's local-filesystem memory tool formats them."""

from __future__ import annotations

from anthropic.lib.tools import ToolError

from reverie.runtime.memory import MemoryInfo, Version

__all__ = ["LINE_NUMBER_WIDTH", "MAX_LINES", "listing", "numbered", "size", "text_of"]

MAX_LINES = 999_999
LINE_NUMBER_WIDTH = len(str(MAX_LINES))


def text_of(version: Version, path: str) -> str:
    """The content of `version` (the file `path`) as text; a binary value is an error to the model."""
    try:
        text = version.content.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:  # msgpack, sealed gossip blocks...: not for the model to read
        raise ToolError(f"The file {path} is not a text file")
    return text


def numbered(path: str, content: str, view_range: object) -> str:
    """`view` of a file: its lines (those of `view_range`, 1-based, -1 to the end), numbered."""
    lines = content.split("\n")
    if len(lines) > MAX_LINES:
        raise ToolError(f"File {path} exceeds maximum line limit of 999,999 lines.")
    start = 0
    if view_range:
        if not isinstance(view_range, list) or not all(isinstance(n, int) and not isinstance(n, bool)
                                                       for n in view_range):
            raise ToolError(f"Invalid `view_range` parameter: {view_range!r}. It should be a list of two integers.")
        if len(view_range) == 2:
            start = max(1, view_range[0]) - 1
            lines = lines[start:len(lines) if view_range[1] == -1 else view_range[1]]
    numbered = [f"{str(i + start + 1).rjust(LINE_NUMBER_WIDTH)}\t{line}" for i, line in enumerate(lines)]
    return f"Here's the content of {path} with line numbers:\n" + "\n".join(numbered)


def listing(path: str, prefix: str, infos: list[MemoryInfo]) -> str:
    """Two levels, hidden items left out; a directory's size is the bytes of the files under it."""
    entries: dict[tuple[tuple[str, int], ...], int] = {}
    for info in infos:
        parts = info.path[len(prefix):].split("/")
        for depth in range(1, min(len(parts), 2) + 1):
            if not parts[depth - 1] or parts[depth - 1].startswith("."):
                break
            is_dir = 1 if depth < len(parts) else 0
            key = (*((p, 1) for p in parts[:depth - 1]), (parts[depth - 1], is_dir))
            entries[key] = entries.get(key, 0) + info.size
    lines = [f"{size(sum(i.size for i in infos))}\t{path}"]
    for key in sorted(entries):
        rel = "/".join(name for name, _ in key) + ("/" if key[-1][1] else "")
        lines.append(f"{size(entries[key])}\t{path}/{rel}")
    return (f"Here're the files and directories up to 2 levels deep in {path}, excluding hidden items:\n"
            + "\n".join(lines))


def size(n: int) -> str:
    """As the SDK formats sizes: 0B, 512B, 1.5K, 2M."""
    if n == 0:
        return "0B"
    i = min((n.bit_length() - 1) // 10, 3)
    size = n / (1024 ** i)
    return f"{int(size) if size == int(size) else f'{size:.1f}'}{'BKMG'[i]}"
