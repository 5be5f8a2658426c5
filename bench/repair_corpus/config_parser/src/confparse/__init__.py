"""A small INI-style configuration parser."""

from confparse.parser import ParseError, get_bool, parse

__all__ = ["ParseError", "get_bool", "parse"]
