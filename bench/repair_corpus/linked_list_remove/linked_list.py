"""A singly linked list with O(1) append at the back."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass
class Node:
    value: int
    next: "Node | None" = None


class LinkedList:
    def __init__(self, values: Iterable[int] = ()) -> None:
        self._head: Node | None = None
        self._tail: Node | None = None
        self._size = 0
        for value in values:
            self.append(value)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[int]:
        node = self._head
        while node is not None:
            yield node.value
            node = node.next

    def append(self, value: int) -> None:
        node = Node(value)
        if self._tail is None:
            self._head = self._tail = node
        else:
            self._tail.next = node
            self._tail = node
        self._size += 1

    def remove(self, value: int) -> bool:
        """Unlink the first node holding `value`; say whether there was one."""
        prev, node = None, self._head
        while node is not None:
            if node.value == value:
                if prev is None:
                    self._head = node.next
                else:
                    prev.next = node.next
                if node is self._tail:
                    self._tail = prev
                self._size -= 1
                return True
            prev, node = node, node.next
        return True
