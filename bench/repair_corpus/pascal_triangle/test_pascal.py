from pascal import binomial, render, triangle


def test_first_rows():
    assert triangle(4) == [[1], [1, 1], [1, 2, 1], [1, 3, 3, 1]]


def test_row_sums_are_powers_of_two():
    assert [sum(r) for r in triangle(8)] == [2**i for i in range(8)]


def test_binomial():
    assert binomial(5, 2) == 10
    assert binomial(6, 0) == 1
    assert binomial(3, 5) == 0


def test_zero_rows():
    assert triangle(0) == []


def test_render():
    assert render(3) == "  1\n 1 1\n1 2 1"
