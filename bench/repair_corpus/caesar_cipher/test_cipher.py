from cipher import crack, decrypt, encrypt, rot13


def test_simple_shift():
    assert encrypt("abc", 3) == "def"


def test_wraps_around():
    assert encrypt("xyz", 3) == "abc"


def test_preserves_case_and_punctuation():
    assert encrypt("Hello, World!", 5) == "Mjqqt, Btwqi!"


def test_round_trip():
    text = "The quick brown fox jumps over the lazy dog"
    assert decrypt(encrypt(text, 11), 11) == text


def test_rot13():
    assert rot13("Zebra") == "Mroen"
    assert rot13(rot13("Zebra")) == "Zebra"


def test_crack():
    assert crack(encrypt("attack at dawn", 7), "dawn") == 7
