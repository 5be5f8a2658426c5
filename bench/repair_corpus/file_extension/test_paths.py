from paths import is_allowed, split_ext, with_ext


def test_simple():
    assert split_ext("report.txt") == ("report", ".txt")


def test_last_dot_wins():
    assert split_ext("backups/site.tar.gz") == ("backups/site.tar", ".gz")


def test_dotfile_and_no_extension():
    assert split_ext(".bashrc") == (".bashrc", "")
    assert split_ext("conf.d/README") == ("conf.d/README", "")


def test_with_ext():
    assert with_ext("a/photo.jpeg", "png") == "a/photo.png"


def test_is_allowed():
    assert is_allowed("Scan.PDF")
    assert not is_allowed("virus.pdf.exe")
