from mergesort import merge, merge_runs, merge_sort


def test_merge_interleaved():
    assert merge([1, 4, 6], [2, 3, 7, 8]) == [1, 2, 3, 4, 6, 7, 8]


def test_merge_with_empty():
    assert merge([], [1, 2]) == [1, 2]
    assert merge([3], []) == [3]


def test_sort():
    assert merge_sort([5, 2, 9, 1, 5, 6]) == [1, 2, 5, 5, 6, 9]


def test_sort_already_sorted():
    data = list(range(10))
    assert merge_sort(data) == data


def test_merge_runs():
    assert merge_runs([[1, 5], [2, 3], [4]]) == [1, 2, 3, 4, 5]
