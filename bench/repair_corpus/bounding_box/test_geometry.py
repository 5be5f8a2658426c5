import pytest
from geometry import area, bounding_box, contains, union


def test_single_point():
    assert bounding_box([(2, 3)]) == (2, 3, 2, 3)


def test_box_of_several_points():
    assert bounding_box([(1, 5), (4, -2), (-1, 3)]) == (-1, -2, 4, 5)


def test_area():
    assert area(bounding_box([(0, 0), (3, 1), (1, 4)])) == 12


def test_contains():
    box = (0, 0, 2, 2)
    assert contains(box, (1, 2))
    assert not contains(box, (3, 1))


def test_union():
    assert union((0, 0, 1, 1), (2, -1, 3, 0)) == (0, -1, 3, 1)


def test_no_points():
    with pytest.raises(ValueError):
        bounding_box([])
