"""Fitting text into fixed-width table cells."""

from collections.abc import Sequence

ELLIPSIS = "..."


def truncate(text: str, width: int) -> str:
    """Shorten `text` to at most `width` characters, marking the cut with an ellipsis."""
    if width < len(ELLIPSIS):
        raise ValueError(f"width must be at least {len(ELLIPSIS)}")
    if len(text) <= width:
        return text
    return text[:width - len(ELLIPSIS) + 1] + ELLIPSIS


def pad(text: str, width: int, align: str = "left") -> str:
    if align == "left":
        return text.ljust(width)
    if align == "right":
        return text.rjust(width)
    if align == "center":
        return text.center(width)
    raise ValueError(f"unknown alignment {align!r}")


def cell(text: str, width: int, align: str = "left") -> str:
    return pad(truncate(text, width), width, align)


def row(values: Sequence[str], widths: Sequence[int], sep: str = " | ") -> str:
    return sep.join(cell(value, width) for value, width in zip(values, widths, strict=True))
