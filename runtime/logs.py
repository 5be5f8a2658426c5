"""Logging helpers: one line per burst of the same error, not one per message."""

from __future__ import annotations

import logging
import time

__all__ = ["BurstLog", "setup_logging"]


class BurstLog:
    """Logs the first occurrence of a key, then at most one summary per `window` seconds.

    A flood of malformed messages costs one log line per window, not one per message.
    """

    def __init__(self, log: logging.Logger, window: float = 10.0) -> None:
        self.log = log
        self.window = window
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += f" (and {suppressed} more like it in the last {self.window:g}s)"
        self.log.warning(msg, *args, exc_info=exc_info)


def setup_logging(level: int = logging.INFO) -> None:
    """Plain lines on stderr; the supervisor prefixes each with the agent's name."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("nats").setLevel(logging.WARNING)
