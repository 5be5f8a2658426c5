import pytest
from pages import all_pages, page_count, page_label, page_slice

ITEMS = ["a", "b", "c", "d", "e"]


def test_page_count():
    assert page_count(5, 2) == 3
    assert page_count(4, 2) == 2
    assert page_count(0, 10) == 1


def test_page_slice():
    assert page_slice(ITEMS, 2, 2) == ["c", "d"]
    assert page_slice(ITEMS, 3, 2) == ["e"]


def test_missing_page():
    with pytest.raises(IndexError):
        page_slice(ITEMS, 4, 2)


def test_all_pages():
    assert all_pages(ITEMS, 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_empty_list_has_one_empty_page():
    assert all_pages([], 3) == [[]]


def test_page_label():
    assert page_label(2, 10, 15) == "items 11-15 of 15"
