"""Axis-aligned bounding boxes for 2D points."""

from collections.abc import Sequence

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # min_x, min_y, max_x, max_y


def bounding_box(points: Sequence[Point]) -> Box:
    if not points:
        raise ValueError("no points")
    (min_x, min_y), rest = points[0], points[1:]
    max_x, max_y = min_x, min_y
    for x, y in rest:
        min_x = min(min_x, x)
        min_y = min(min_y, y)
        max_x = max(max_x, x)
        max_y = min(max_y, y)
    return min_x, min_y, max_x, max_y


def area(box: Box) -> float:
    min_x, min_y, max_x, max_y = box
    return (max_x - min_x) * (max_y - min_y)


def contains(box: Box, point: Point) -> bool:
    min_x, min_y, max_x, max_y = box
    x, y = point
    return min_x <= x <= max_x and min_y <= y <= max_y


def union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
