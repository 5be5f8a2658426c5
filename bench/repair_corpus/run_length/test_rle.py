import pytest
from rle import decode, encode, from_string, to_string


def test_encode():
    assert encode("aaabcc") == [("a", 3), ("b", 1), ("c", 2)]


def test_single_run():
    assert encode("zzzz") == [("z", 4)]


def test_empty():
    assert encode("") == []


def test_round_trip():
    for text in ["a", "abc", "aabbbaa", "xxxxxxxxxxxxy"]:
        assert decode(encode(text)) == text


def test_string_form():
    assert to_string(encode("aaab")) == "3a1b"
    assert from_string("3a1b") == [("a", 3), ("b", 1)]


def test_malformed_string():
    with pytest.raises(ValueError):
        from_string("3a1")
