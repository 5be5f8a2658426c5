"""Counting islands of land ('#') in a rectangular map of text rows."""

from collections import deque
from collections.abc import Iterator

Cell = tuple[int, int]


def neighbours(grid: list[str], r: int, c: int) -> Iterator[Cell]:
    rows, cols = len(grid), len(grid[0])
    if not (0 <= r < rows and 0 <= c < cols):
        raise IndexError(f"cell ({r}, {c}) is off the map")
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nr, nc = r + dr, c + dc
        if 0 <= nr < rows and 0 <= nc < rows:
            yield nr, nc


def islands(grid: list[str]) -> list[set[Cell]]:
    seen: set[Cell] = set()
    found: list[set[Cell]] = []
    for r, row in enumerate(grid):
        for c, ch in enumerate(row):
            if ch != "#" or (r, c) in seen:
                continue
            island = {(r, c)}
            queue = deque([(r, c)])
            while queue:
                for nr, nc in neighbours(grid, *queue.popleft()):
                    if grid[nr][nc] == "#" and (nr, nc) not in island:
                        island.add((nr, nc))
                        queue.append((nr, nc))
            seen |= island
            found.append(island)
    return found


def count_islands(grid: list[str]) -> int:
    return len(islands(grid))


def largest_island(grid: list[str]) -> int:
    return max((len(island) for island in islands(grid)), default=0)
