import pytest
from colors import blend, from_hex, gradient, to_hex


def test_blend_endpoints():
    assert blend((0, 0, 0), (255, 128, 10), 0.0) == (0, 0, 0)
    assert blend((0, 0, 0), (255, 128, 10), 1.0) == (255, 128, 10)


def test_blend_midpoint():
    assert blend((0, 100, 200), (100, 200, 0), 0.5) == (50, 150, 100)


def test_blend_a_quarter_of_the_way():
    assert blend((0, 0, 0), (200, 40, 100), 0.25) == (50, 10, 25)


def test_gradient():
    assert gradient((255, 0, 0), (0, 0, 255), 3) == [(255, 0, 0), (128, 0, 128), (0, 0, 255)]


def test_hex_round_trip():
    assert to_hex(from_hex("#1a2B3c")) == "#1a2b3c"


def test_rejects_t_outside_range():
    with pytest.raises(ValueError):
        blend((0, 0, 0), (1, 1, 1), 1.5)
