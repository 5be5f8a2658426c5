from singly import from_values, middle, reverse, to_list


def test_round_trip():
    assert to_list(from_values([1, 2, 3])) == [1, 2, 3]


def test_reverse():
    assert to_list(reverse(from_values([1, 2, 3, 4]))) == [4, 3, 2, 1]


def test_reverse_single_and_empty():
    assert to_list(reverse(from_values([7]))) == [7]
    assert reverse(None) is None


def test_reverse_twice():
    values = [5, 6, 7]
    assert to_list(reverse(reverse(from_values(values)))) == values


def test_middle():
    assert middle(from_values([1, 2, 3, 4, 5])).value == 3
    assert middle(from_values([1, 2, 3, 4])).value == 3
