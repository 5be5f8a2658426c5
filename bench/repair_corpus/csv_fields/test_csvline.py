import pytest
from csvline import join_line, split_line


def test_plain_fields():
    assert split_line("a,b,c") == ["a", "b", "c"]


def test_quoted_separator():
    assert split_line('name,"Smith, Jane",42') == ["name", "Smith, Jane", "42"]


def test_escaped_quote():
    assert split_line('"say ""hi""",x') == ['say "hi"', "x"]


def test_empty_fields():
    assert split_line(",,") == ["", "", ""]


def test_round_trip():
    fields = ["plain", "with, comma", 'a "quote"', ""]
    assert split_line(join_line(fields)) == fields


def test_unterminated_quote():
    with pytest.raises(ValueError):
        split_line('"open,x')
