from search import contains, index_of, lower_bound


def test_finds_a_value_in_the_middle():
    assert index_of([1, 3, 5, 7, 9], 5) == 2


def test_finds_the_first_and_last_values():
    items = [2, 4, 6, 8]
    assert index_of(items, 2) == 0
    assert index_of(items, 8) == 3


def test_single_element():
    assert index_of([7], 7) == 0
    assert index_of([7], 3) == -1


def test_absent_values():
    assert not contains([1, 3, 5], 4)
    assert not contains([], 1)


def test_every_element_is_found():
    items = list(range(0, 40, 3))
    assert [index_of(items, v) for v in items] == list(range(len(items)))


def test_lower_bound():
    assert lower_bound([1, 2, 2, 3], 2) == 1
    assert lower_bound([1, 2, 2, 3], 4) == 4
