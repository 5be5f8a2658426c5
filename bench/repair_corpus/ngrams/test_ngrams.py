import pytest
from ngrams import char_ngrams, ngrams, similarity


def test_bigrams():
    assert ngrams(["a", "b", "c", "d"], 2) == [("a", "b"), ("b", "c"), ("c", "d")]


def test_n_equal_to_length():
    assert ngrams(["x", "y"], 2) == [("x", "y")]


def test_n_longer_than_input():
    assert ngrams(["x"], 3) == []


def test_char_trigrams():
    assert char_ngrams("hello", 3) == ["hel", "ell", "llo"]


def test_similarity():
    assert similarity("night", "night") == 1.0
    assert similarity("abc", "xyz") == 0.0


def test_invalid_n():
    with pytest.raises(ValueError):
        ngrams(["a"], 0)
