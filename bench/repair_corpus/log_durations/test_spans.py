from datetime import datetime

import pytest
from spans import durations, parse_line, slowest

LOG = [
    "2024-05-01T10:00:00 START backup",
    "2024-05-01T10:00:30 START report",
    "2024-05-01T10:01:30 END backup",
    "",
    "2024-05-01T10:02:30 END report",
    "2024-05-01T10:05:00 START cleanup",
]


def test_parse_line():
    assert parse_line(LOG[0]) == (datetime(2024, 5, 1, 10, 0, 0), "START", "backup")


def test_durations():
    assert durations(LOG) == {"backup": 90.0, "report": 120.0}


def test_slowest():
    assert slowest(LOG) == "report"
    assert slowest([]) is None


def test_end_without_start():
    with pytest.raises(ValueError):
        durations(["2024-05-01T10:00:00 END backup"])


def test_unknown_event():
    with pytest.raises(ValueError):
        parse_line("2024-05-01T10:00:00 PAUSE backup")
