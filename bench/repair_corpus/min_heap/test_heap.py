import pytest
from heap import MinHeap


def test_peek_is_the_minimum():
    assert MinHeap([5, 3, 8, 1, 9]).peek() == 1


def test_pops_in_ascending_order():
    heap = MinHeap([5, 3, 8, 1, 9, 2, 7])
    assert [heap.pop() for _ in range(len(heap))] == [1, 2, 3, 5, 7, 8, 9]


def test_push_after_pop():
    heap = MinHeap([4, 6])
    assert heap.pop() == 4
    heap.push(1)
    heap.push(5)
    assert [heap.pop(), heap.pop(), heap.pop()] == [1, 5, 6]


def test_duplicates():
    heap = MinHeap([2, 2, 1, 1])
    assert [heap.pop() for _ in range(4)] == [1, 1, 2, 2]


def test_empty_heap_raises():
    with pytest.raises(IndexError):
        MinHeap().pop()
