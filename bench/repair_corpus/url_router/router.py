"""Longest-prefix routing of URL paths to handler names."""


class Router:
    def __init__(self) -> None:
        self._routes: dict[str, str] = {}

    def add(self, prefix: str, handler: str) -> None:
        if not prefix.startswith("/"):
            raise ValueError(f"route must start with '/': {prefix!r}")
        self._routes[prefix.rstrip("/") or "/"] = handler

    def match(self, path: str) -> str | None:
        """The handler of the longest route that is `path` itself or a parent of it."""
        path = path.split("?", 1)[0]
        for prefix in sorted(self._routes, key=len, reverse=True):
            if path == prefix or path.endswith(prefix.rstrip("/") + "/"):
                return self._routes[prefix]
        return None

    def routes(self) -> list[str]:
        return sorted(self._routes)
