import pytest
from leaderboard import rank_of, standings, top

SCORES = {"ann": 40, "dan": 70, "cat": 55, "bob": 55, "eve": 10}


def test_best_first():
    assert top(SCORES, 2) == ["dan", "bob"]


def test_ties_share_a_rank():
    assert standings(SCORES) == [(1, "dan", 70), (2, "bob", 55), (2, "cat", 55), (4, "ann", 40), (5, "eve", 10)]


def test_rank_of():
    assert rank_of(SCORES, "dan") == 1
    assert rank_of(SCORES, "cat") == 2
    assert rank_of(SCORES, "ann") == 4


def test_unknown_player():
    with pytest.raises(KeyError):
        rank_of(SCORES, "zed")


def test_empty_board():
    assert standings({}) == []
