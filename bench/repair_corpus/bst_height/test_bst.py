from bst import build, contains, height, in_order


def test_in_order_is_sorted():
    assert list(in_order(build([5, 2, 8, 1, 9, 3]))) == [1, 2, 3, 5, 8, 9]


def test_duplicates_are_ignored():
    assert list(in_order(build([2, 2, 1]))) == [1, 2]


def test_height_of_empty_tree():
    assert height(None) == 0


def test_height_of_balanced_tree():
    assert height(build([4, 2, 6, 1, 3, 5, 7])) == 3


def test_height_of_a_chain():
    assert height(build([1, 2, 3, 4])) == 4


def test_contains():
    root = build([5, 2, 8])
    assert contains(root, 8)
    assert not contains(root, 7)
