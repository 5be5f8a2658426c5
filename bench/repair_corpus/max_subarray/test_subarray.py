import pytest
from subarray import max_subarray, max_subarray_sum

MIXED = [-2, 1, -3, 4, -1, 2, 1, -5, 4]


def test_mixed_signs():
    assert max_subarray_sum(MIXED) == 6


def test_all_positive():
    assert max_subarray_sum([1, 2, 3]) == 6


def test_all_negative():
    assert max_subarray_sum([-3, -1, -2]) == -1
    assert max_subarray_sum([-5, -4, -6]) == -4


def test_single_value():
    assert max_subarray_sum([-7]) == -7


def test_bounds():
    assert max_subarray(MIXED) == (3, 7)
    assert max_subarray([-3, -1, -2]) == (1, 2)


def test_empty():
    with pytest.raises(ValueError):
        max_subarray_sum([])
