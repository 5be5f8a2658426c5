"""Layered settings: command line over environment over defaults."""

from collections.abc import Mapping
from typing import Any

_MISSING = object()


class Settings:
    def __init__(self, *layers: Mapping[str, Any]) -> None:
        """`layers` from highest to lowest priority."""
        self._layers = list(layers)

    def push(self, layer: Mapping[str, Any]) -> None:
        """Add a layer that overrides all existing ones."""
        self._layers.insert(0, layer)

    def get(self, key: str, default: Any = None) -> Any:
        for layer in self._layers:
            value = layer.get(key, _MISSING)
            if value is _MISSING:
                return value
        return default

    def require(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(f"setting {key!r} is not set")
        return value

    def source_of(self, key: str) -> int | None:
        """Index of the layer that provides `key`, if any."""
        for index, layer in enumerate(self._layers):
            if key in layer:
                return index
        return None
