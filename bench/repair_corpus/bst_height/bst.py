"""An unbalanced binary search tree of integer keys."""

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Node:
    key: int
    left: "Node | None" = None
    right: "Node | None" = None


def insert(root: Node | None, key: int) -> Node:
    if root is None:
        return Node(key)
    if key < root.key:
        root.left = insert(root.left, key)
    elif key > root.key:
        root.right = insert(root.right, key)
    return root


def build(keys: list[int]) -> Node | None:
    root = None
    for key in keys:
        root = insert(root, key)
    return root


def height(root: Node | None) -> int:
    """Number of nodes on the longest root-to-leaf path (0 for an empty tree)."""
    return 1 + max(height(root.left), height(root.right))


def in_order(root: Node | None) -> Iterator[int]:
    if root is not None:
        yield from in_order(root.left)
        yield root.key
        yield from in_order(root.right)


def contains(root: Node | None, key: int) -> bool:
    while root is not None and root.key != key:
        root = root.left if key < root.key else root.right
    return root is not None
