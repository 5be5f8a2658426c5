"""Splitting result lists into numbered pages (page numbers start at 1)."""

from collections.abc import Sequence


def page_count(total: int, per_page: int) -> int:
    if per_page < 1:
        raise ValueError("per_page must be positive")
    return max(1, -(-total // per_page))


def page_slice(items: Sequence[str], page: int, per_page: int) -> list[str]:
    if not 1 <= page <= page_count(len(items), per_page):
        raise IndexError(f"no page {page}")
    start = (page - 1) * per_page
    return list(items[start:start + per_page])


def all_pages(items: Sequence[str], per_page: int) -> list[list[str]]:
    return [page_slice(items, per_page, n) for n in range(1, page_count(len(items), per_page) + 1)]


def page_label(page: int, per_page: int, total: int) -> str:
    """E.g. 'items 11-20 of 45'."""
    first = (page - 1) * per_page + 1
    last = min(page * per_page, total)
    return f"items {first}-{last} of {total}"
