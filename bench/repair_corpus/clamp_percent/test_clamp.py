import pytest
from clamp import clamp, normalize, percent


def test_inside_range():
    assert clamp(5, 0, 10) == 5


def test_below_and_above():
    assert clamp(-3, 0, 10) == 0
    assert clamp(12, 0, 10) == 10


def test_empty_range():
    with pytest.raises(ValueError):
        clamp(1, 5, 0)


def test_percent():
    assert percent(1, 3) == 33
    assert percent(5, 4) == 100
    assert percent(-1, 4) == 0


def test_normalize():
    assert normalize([2, 4, 6]) == [0.0, 0.5, 1.0]
