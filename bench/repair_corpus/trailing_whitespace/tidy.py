"""Whitespace clean-up for source files before commit."""


def clean_line(line: str) -> str:
    """Drop trailing spaces and tabs; keep the indentation."""
    return line.lstrip(" \t")


def clean_text(text: str) -> str:
    """Clean every line, drop blank lines at the end, and end with exactly one newline."""
    lines = [clean_line(line) for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def expand_indent(line: str, tab_size: int = 4) -> str:
    """Replace tabs in the leading indentation only."""
    body = line.lstrip(" \t")
    indent = line[:len(line) - len(body)]
    return indent.expandtabs(tab_size) + body


def needs_cleaning(text: str) -> bool:
    return clean_text(text) != text
