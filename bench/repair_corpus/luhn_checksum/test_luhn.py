from luhn import check_digit, is_valid, normalize


def test_known_valid_numbers():
    assert is_valid("79927398713")
    assert is_valid("4539 1488 0343 6467")


def test_single_digit_errors_are_caught():
    assert not is_valid("79927398714")


def test_rejects_non_digits_and_short_input():
    assert not is_valid("7992-7398-71x3")
    assert not is_valid("0")


def test_check_digit():
    assert check_digit("7992739871") == "3"


def test_normalize():
    assert normalize("1234-5678 90") == "1234567890"
