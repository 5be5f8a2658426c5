from policy import is_acceptable, problems


def test_strong_password():
    assert is_acceptable("Correct-Horse-42")


def test_missing_digit():
    assert problems("Correct-Horse-Battery") == ["no digit"]


def test_too_short():
    assert "shorter than 10 characters" in problems("Ab1!")


def test_single_case():
    assert problems("correct-horse-42") == ["not mixed case"]


def test_common_password():
    assert problems("Password123!") == ["too common"]
