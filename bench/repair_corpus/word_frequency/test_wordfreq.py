from wordfreq import count_words, top_words, words


def test_words_are_lowercased():
    assert words("The Cat's hat") == ["the", "cat's", "hat"]


def test_stopwords_are_ignored():
    assert count_words("The cat and the hat") == {"cat": 1, "hat": 1}


def test_counts_repeated_words():
    assert count_words("spam spam eggs spam")["spam"] == 3


def test_top_words_breaks_ties_alphabetically():
    assert top_words("b a c b c d", 2) == [("b", 2), ("c", 2)]


def test_empty_text():
    assert count_words("") == {}
