"""Singly linked list helpers: build, walk, reverse in place, find the middle."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Node:
    value: int
    next: "Node | None" = None


def from_values(values: Iterable[int]) -> Node | None:
    head: Node | None = None
    for value in reversed(list(values)):
        head = Node(value, head)
    return head


def to_list(head: Node | None) -> list[int]:
    out = []
    while head is not None:
        out.append(head.value)
        head = head.next
    return out


def reverse(head: Node | None) -> Node | None:
    """Reverse the list in place; return the new head."""
    prev: Node | None = None
    node = head
    while node is not None:
        nxt = node.next
        node.next = prev
        node = nxt
        prev = node
    return prev


def middle(head: Node | None) -> Node | None:
    """The middle node (the second of two middles), by the two-pointer walk."""
    slow = fast = head
    while fast is not None and fast.next is not None:
        slow = slow.next
        fast = fast.next.next
    return slow
