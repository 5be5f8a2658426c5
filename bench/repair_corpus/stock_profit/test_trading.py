from trading import best_trade, max_profit


def test_rising_prices():
    assert max_profit([1, 2, 3, 5]) == 4


def test_falling_prices():
    assert max_profit([9, 7, 4, 1]) == 0


def test_dip_then_rise():
    assert max_profit([7, 1, 5, 3, 6, 4]) == 5


def test_empty():
    assert max_profit([]) == 0


def test_best_trade():
    assert best_trade([7, 1, 5, 3, 6, 4]) == (1, 4)
    assert best_trade([5, 4]) is None
