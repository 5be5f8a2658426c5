import pytest
from islands import count_islands, largest_island, neighbours


def test_diagonal_cells_are_separate():
    assert count_islands(["#..", ".#.", "..#"]) == 3


def test_connected_square_map():
    assert count_islands(["##.", ".#.", ".##"]) == 1


def test_wide_map():
    grid = ["####.##", "......#"]
    assert count_islands(grid) == 2
    assert largest_island(grid) == 4


def test_tall_map():
    assert count_islands(["#", "#", ".", "#"]) == 2


def test_neighbours_stay_on_the_map():
    assert sorted(neighbours(["...", "..."], 0, 1)) == [(0, 0), (0, 2), (1, 1)]
    with pytest.raises(IndexError):
        list(neighbours(["..."], 0, 3))


def test_empty_sea():
    assert count_islands(["...", "..."]) == 0
    assert largest_island(["..."]) == 0
