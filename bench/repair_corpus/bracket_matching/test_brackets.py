from brackets import first_error, is_balanced, max_depth


def test_balanced():
    assert is_balanced("f(a[1], {b: 2})")


def test_empty_and_plain_text():
    assert is_balanced("")
    assert is_balanced("no brackets")


def test_mismatched_pair():
    assert first_error("(]") == 1


def test_unopened_closer():
    assert first_error("a)") == 1


def test_left_open():
    assert first_error("((x)") == 4


def test_max_depth():
    assert max_depth("[(a)(b{c})]") == 3
