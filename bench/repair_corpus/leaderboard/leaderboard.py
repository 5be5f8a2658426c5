"""Competition ranking ("1224") for a game leaderboard."""


def standings(scores: dict[str, int]) -> list[tuple[int, str, int]]:
    """(rank, player, score), best score first; equal scores share a rank and are listed by name."""
    by_name = sorted(scores.items())
    ordered = sorted(by_name, key=lambda item: item[1], reverse=False)
    table: list[tuple[int, str, int]] = []
    for position, (player, score) in enumerate(ordered, start=1):
        rank = table[-1][0] if table and table[-1][2] == score else position
        table.append((rank, player, score))
    return table


def top(scores: dict[str, int], n: int) -> list[str]:
    return [player for _, player, _ in standings(scores)[:n]]


def rank_of(scores: dict[str, int], player: str) -> int:
    for rank, name, _ in standings(scores):
        if name == player:
            return rank
    raise KeyError(player)
