"""A binary min-heap backed by a list."""

from collections.abc import Iterable


class MinHeap:
    def __init__(self, items: Iterable[int] = ()) -> None:
        self._items: list[int] = []
        for item in items:
            self.push(item)

    def __len__(self) -> int:
        return len(self._items)

    def peek(self) -> int:
        if not self._items:
            raise IndexError("peek at an empty heap")
        return self._items[0]

    def push(self, item: int) -> None:
        self._items.append(item)
        i = len(self._items) - 1
        while i > 0:
            parent = (i - 1) // 2
            if self._items[parent] <= self._items[i]:
                break
            self._items[parent], self._items[i] = self._items[i], self._items[parent]
            i = parent

    def pop(self) -> int:
        if not self._items:
            raise IndexError("pop from an empty heap")
        last = self._items.pop()
        if not self._items:
            return last
        top, self._items[0] = self._items[0], last
        self._sift_down(0)
        return top

    def _sift_down(self, i: int) -> None:
        n = len(self._items)
        while True:
            smallest = i
            for child in (2 * i + 1, 2 * i + 2):
                if child < n and self._items[child] > self._items[smallest]:
                    smallest = child
            if smallest == i:
                return
            self._items[i], self._items[smallest] = self._items[smallest], self._items[i]
            i = smallest
