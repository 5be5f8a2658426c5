"""Logging helpers: one line per burst of the same error, not one per message."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

__all__ = [
    "LOG_FORMAT_ENV",
    "LOG_LEVEL_ENV",
    "BurstLog",
    "JsonFormatter",
    "LogFormat",
    "json_line",
    "setup_logging",
]

LogFormat = Literal["text", "json"]
LOG_FORMAT_ENV = "REVERIE_LOG_FORMAT"
LOG_LEVEL_ENV = "REVERIE_LOG_LEVEL"
"""`reverie up --log-format/--log-level` set these, so every agent process logs the same way."""


def _now(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_line(level: str, logger: str, msg: str, extra: Mapping[str, object] | None = None, *,
              at: float | None = None) -> str:
    """One log record as a JSON object on one line; `at` a `time.time()` (default: now)."""
    record = {"ts": _now(time.time() if at is None else at), "level": level, "logger": logger, "msg": msg,
              **(extra or {})}
    return json.dumps(record, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", "exc"?}` per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        extra = {"exc": self.formatException(record.exc_info)} if record.exc_info else {}
        return json_line(record.levelname, record.name, record.getMessage(), extra, at=record.created)


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


def setup_logging(level: int | str | None = None, fmt: LogFormat | None = None) -> None:
    """Log lines on stderr: text with a UTC timestamp, or JSON objects (`fmt`, else
    $REVERIE_LOG_FORMAT); at `level` (else $REVERIE_LOG_LEVEL, else INFO). The supervisor
    prefixes an agent's text lines with its name, and adds it to its JSON lines as `agent`."""
    chosen = fmt or os.environ.get(LOG_FORMAT_ENV, "text")
    handler = logging.StreamHandler()
    if chosen == "json":
        handler.setFormatter(JsonFormatter())
    else:
        text = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        text.converter = time.gmtime
        handler.setFormatter(text)
    logging.basicConfig(level=level or os.environ.get(LOG_LEVEL_ENV, "INFO").upper(), handlers=[handler], force=True)
    logging.getLogger("nats").setLevel(logging.WARNING)
