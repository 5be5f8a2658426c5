import pytest
from stats import mean, median, modes, variance


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


def test_median_of_odd_length():
    assert median([7, 1, 3]) == 3


def test_median_of_even_length():
    assert median([4, 1, 3, 2]) == 2.5
    assert median([10, 20]) == 15


def test_modes():
    assert modes([1, 2, 2, 3, 3]) == [2, 3]
    assert modes([]) == []


def test_variance():
    assert variance([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(32 / 7)


def test_empty_sample():
    with pytest.raises(ValueError):
        median([])
