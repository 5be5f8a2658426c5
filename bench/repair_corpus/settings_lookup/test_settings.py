import pytest
from settings import Settings


def make() -> Settings:
    return Settings({"port": 9000}, {"port": 8000, "host": "localhost"}, {"debug": False, "timeout": None})


def test_highest_layer_wins():
    assert make().get("port") == 9000


def test_falls_through_to_lower_layers():
    assert make().get("host") == "localhost"


def test_false_and_none_values_are_kept():
    settings = make()
    assert settings.get("debug", True) is False
    assert settings.get("timeout", 5) is None


def test_default():
    assert make().get("colour", "auto") == "auto"


def test_require_missing():
    with pytest.raises(KeyError):
        make().require("colour")


def test_push_overrides():
    settings = make()
    settings.push({"host": "example.org"})
    assert settings.get("host") == "example.org"
    assert settings.source_of("port") == 1
