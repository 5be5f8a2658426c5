import pytest
from window import moving_average, smooth


def test_window_of_two():
    assert moving_average([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]


def test_window_of_one_is_the_series():
    assert moving_average([4, 8, 15], 1) == [4, 8, 15]


def test_window_larger_than_the_series():
    assert moving_average([1, 2], 3) == []


def test_whole_series():
    assert moving_average([1, 2, 4], 3) == [pytest.approx(7 / 3)]


def test_smooth():
    assert smooth([2, 4, 6], 2) == [2.0, 3.0, 5.0]


def test_bad_window():
    with pytest.raises(ValueError):
        moving_average([1], 0)
