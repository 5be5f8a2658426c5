import pytest
from numerals import parse_roman, to_roman


def test_additive_numerals():
    assert parse_roman("III") == 3
    assert parse_roman("LXVI") == 66


def test_subtractive_numerals():
    assert parse_roman("XIV") == 14
    assert parse_roman("MCMXCIV") == 1994


def test_lowercase_and_spaces():
    assert parse_roman(" xii ") == 12


def test_formatting():
    assert to_roman(1994) == "MCMXCIV"
    assert to_roman(4) == "IV"


def test_round_trip():
    for n in range(1, 200):
        assert parse_roman(to_roman(n)) == n


@pytest.mark.parametrize("bad", ["", "ABC", "12"])
def test_rejects_garbage(bad):
    with pytest.raises(ValueError):
        parse_roman(bad)
