import pytest
from intervals import gaps, merge, total_length


def test_overlapping_intervals_merge():
    assert merge([(1, 4), (2, 6), (8, 10)]) == [(1, 6), (8, 10)]


def test_unsorted_input():
    assert merge([(8, 10), (1, 3)]) == [(1, 3), (8, 10)]


def test_touching_intervals_merge():
    assert merge([(1, 3), (3, 5)]) == [(1, 5)]


def test_contained_interval():
    assert merge([(1, 10), (2, 3)]) == [(1, 10)]


def test_gaps():
    assert gaps([(0, 2), (2, 4), (6, 9)]) == [(4, 6)]


def test_total_length():
    assert total_length([(0, 2), (1, 5), (10, 11)]) == 6


def test_reversed_interval_is_rejected():
    with pytest.raises(ValueError):
        merge([(5, 1)])
