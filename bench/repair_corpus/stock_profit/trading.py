"""Best single buy-then-sell trade over a series of daily prices."""

from collections.abc import Sequence


def max_profit(prices: Sequence[int]) -> int:
    """Largest gain from buying on one day and selling on a later day (0 if none)."""
    if not prices:
        return 0
    lowest, best = prices[0], 0
    for price in prices[1:]:
        best = max(best, price - lowest)
        lowest = max(lowest, price)
    return best


def best_trade(prices: Sequence[int]) -> tuple[int, int] | None:
    """(buy_day, sell_day) of the earliest most profitable trade; None if no trade gains."""
    best: tuple[int, int] | None = None
    best_gain = 0
    low_day = 0
    for day, price in enumerate(prices):
        if price < prices[low_day]:
            low_day = day
        elif price - prices[low_day] > best_gain:
            best_gain = price - prices[low_day]
            best = (low_day, day)
    return best
