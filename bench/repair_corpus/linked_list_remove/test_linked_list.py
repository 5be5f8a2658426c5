from linked_list import LinkedList


def test_append_and_iterate():
    assert list(LinkedList([1, 2, 3])) == [1, 2, 3]


def test_remove_middle():
    items = LinkedList([1, 2, 3])
    assert items.remove(2) is True
    assert list(items) == [1, 3]
    assert len(items) == 2


def test_remove_missing_value_reports_false():
    items = LinkedList([1, 2])
    assert items.remove(9) is False
    assert len(items) == 2


def test_remove_last_then_append():
    items = LinkedList([1, 2])
    items.remove(2)
    items.append(5)
    assert list(items) == [1, 5]


def test_remove_until_empty():
    items = LinkedList([4, 4])
    assert [items.remove(4) for _ in range(3)] == [True, True, False]
    assert len(items) == 0
