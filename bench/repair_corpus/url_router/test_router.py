import pytest
from router import Router


def make_router() -> Router:
    router = Router()
    router.add("/", "home")
    router.add("/api", "api")
    router.add("/api/users/", "users")
    return router


def test_exact_match():
    assert make_router().match("/api") == "api"


def test_longest_prefix_wins():
    assert make_router().match("/api/users/42") == "users"


def test_parent_route():
    assert make_router().match("/api/orders") == "api"


def test_root_catches_everything_else():
    assert make_router().match("/about") == "home"
    assert make_router().match("/apix") == "home"


def test_query_string_is_ignored():
    assert make_router().match("/api?page=2") == "api"


def test_without_a_root_route():
    router = Router()
    router.add("/docs", "docs")
    assert router.match("/doc") is None
    assert router.match("/docs/intro") == "docs"
    assert router.routes() == ["/docs"]


def test_relative_route_is_rejected():
    with pytest.raises(ValueError):
        Router().add("api", "api")
