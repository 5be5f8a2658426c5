"""Pascal's triangle and binomial coefficients."""


def next_row(row: list[int]) -> list[int]:
    if not row:
        return [1]
    inner = [row[j - 1] + row[j] for j in range(1, len(row) - 1)]
    return [1, *inner, 1]


def triangle(n: int) -> list[list[int]]:
    """The first `n` rows."""
    rows: list[list[int]] = []
    row: list[int] = []
    for _ in range(n):
        row = next_row(row)
        rows.append(row)
    return rows


def binomial(n: int, k: int) -> int:
    if k < 0 or k > n:
        return 0
    return triangle(n + 1)[n][k]


def render(n: int) -> str:
    rows = [" ".join(map(str, r)) for r in triangle(n)]
    width = len(rows[-1]) if rows else 0
    return "\n".join(r.center(width).rstrip() for r in rows)
