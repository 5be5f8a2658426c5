from nested import count_leaves, depth, flatten


def test_flat_list():
    assert flatten([1, 2, 3]) == [1, 2, 3]


def test_nested_lists():
    assert flatten([1, [2, [3, 4]], [], 5]) == [1, 2, 3, 4, 5]


def test_empty_list():
    assert flatten([]) == []


def test_depth():
    assert depth([1, [2, [3]]]) == 3
    assert depth([]) == 1
    assert depth(7) == 0


def test_count_leaves():
    assert count_leaves([["a", "b"], ["c"]]) == 3
