from tidy import clean_line, clean_text, expand_indent, needs_cleaning


def test_trailing_spaces_removed():
    assert clean_line("x = 1   ") == "x = 1"


def test_indentation_kept():
    assert clean_line("    return x\t") == "    return x"


def test_clean_text():
    assert clean_text("def f():  \n    pass \n\n\n") == "def f():\n    pass\n"


def test_blank_input():
    assert clean_text("\n  \n") == ""


def test_expand_indent():
    assert expand_indent("\tif x:\tpass") == "    if x:\tpass"


def test_needs_cleaning():
    assert not needs_cleaning("ok\n")
    assert needs_cleaning("ok \n")
