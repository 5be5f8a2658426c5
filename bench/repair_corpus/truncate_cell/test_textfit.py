import pytest
from textfit import cell, row, truncate


def test_short_text_is_unchanged():
    assert truncate("abc", 10) == "abc"


def test_exact_width_is_unchanged():
    assert truncate("abcdef", 6) == "abcdef"


def test_long_text_fits_the_width():
    out = truncate("abcdefghij", 8)
    assert out == "abcde..."
    assert len(out) == 8


def test_cells_have_the_requested_width():
    assert cell("a long heading", 9, "right") == "a long..."
    assert cell("id", 4, "right") == "  id"


def test_row():
    assert row(["name", "description"], [4, 8]) == "name | descr..."


def test_too_narrow():
    with pytest.raises(ValueError):
        truncate("abc", 2)
