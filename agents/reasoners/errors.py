"""The error a dreamer's reasoner options raise, apart from the factory so that a reasoner
package the factory loads on demand (Claude) can raise it too."""

from __future__ import annotations

from reverie.protocol import ReverieError

__all__ = ["ReasonerConfigError"]


class ReasonerConfigError(ReverieError):
    """A dreamer's `reasoner` / `reasoner_options` cannot build a reasoner; `field` is the
    option's path below the dreamer's options (".reasoner_options.thinking"), when known."""

    def __init__(self, message: str, *, field: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail or message
