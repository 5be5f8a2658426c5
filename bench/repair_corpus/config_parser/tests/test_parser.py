import pytest
from confparse import ParseError, get_bool, parse


def test_keys_and_sections():
    assert parse("a = 1\n[s]\nb = two") == {"": {"a": "1"}, "s": {"b": "two"}}


def test_comments_and_blank_lines_are_skipped():
    text = "# top\n\n[server]\n; the port\nport = 8080\n"
    assert parse(text) == {"": {}, "server": {"port": "8080"}}


def test_values_may_contain_equals():
    assert parse("url = a=b")[""]["url"] == "a=b"


def test_keys_are_lowercased():
    assert parse("[s]\nHost = x")["s"] == {"host": "x"}


def test_bad_line_reports_its_number():
    with pytest.raises(ParseError) as info:
        parse("[s]\n\njust words\n")
    assert info.value.lineno == 3


def test_get_bool():
    sections = parse("[s]\ndebug = Yes\nquiet = off\n")
    assert get_bool(sections, "s", "debug") is True
    assert get_bool(sections, "s", "quiet") is False
    assert get_bool(sections, "s", "missing", default=True) is True
