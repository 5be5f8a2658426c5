"""Retrying JetStream calls through leader elections and the loss of a node.

In a cluster, a stream whose leader's node died answers nothing until its replicas elect a
new leader (about 2 to 5 seconds): a publish gets "no responders", an API call a timeout or
"JetStream temporarily unavailable". Each such call is retried here with a growing delay for
up to `patience` seconds, logged once when it starts failing and once when it recovers. A
publish is retried with the message id it had, so JetStream stores it once however many of
the attempts arrived.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import nats.js.errors

__all__ = ["API_TIMEOUT", "PATIENCE", "RETRY_TIMEOUT", "Attempts", "retrying", "transient"]

T = TypeVar("T")

PATIENCE = 30.0
"""Seconds a JetStream call keeps trying: several leader elections' worth."""
API_TIMEOUT = 2.0
"""Seconds one attempt of a JetStream call waits (nats-py's default is 5): a request to a node
that is going away is given up sooner and tried again elsewhere."""
RETRY_TIMEOUT = 0.5
"""Seconds an attempt after a failed one waits for a publish's ack. A publish to a stream with no
leader is not refused (its followers hear it) but never acked: an attempt that waited the whole
`API_TIMEOUT` would store the message up to that long after the new leader is elected."""
FIRST_DELAY = 0.1
MAX_DELAY = 0.5
"""The longest pause between attempts: once a leader is elected, a call goes through within it."""
_UNAVAILABLE = {10008, 10005}
"""JetStream's "system temporarily unavailable", and "no suitable peers for placement" (a cluster
still forming, or a node down while a replicated stream or bucket is created)."""

log = logging.getLogger("reverie.bus")


class Attempts:
    """Counts the attempts of one retried publish; `timeout()` is the next one's ack timeout."""

    def __init__(self) -> None:
        self.count = 0

    def timeout(self) -> float:
        self.count += 1
        return API_TIMEOUT if self.count == 1 else RETRY_TIMEOUT


def transient(exc: BaseException) -> bool:
    """Whether a failed JetStream call may succeed when tried again shortly (a leader is being
    elected, a node is gone, the client is reconnecting); never for a closed connection."""
    if isinstance(exc, nats.errors.ConnectionClosedError):
        return False
    if isinstance(exc, nats.js.errors.NoStreamResponseError | nats.js.errors.ServiceUnavailableError):
        return True
    if isinstance(exc, nats.js.errors.APIError):  # some subclasses (KeyNotFoundError) set neither code
        return getattr(exc, "code", None) == 503 or getattr(exc, "err_code", None) in _UNAVAILABLE
    return isinstance(exc, nats.errors.TimeoutError | TimeoutError | nats.errors.NoRespondersError
                      | nats.errors.ConnectionReconnectingError | nats.errors.StaleConnectionError)


async def retrying(what: str, op: Callable[[], Awaitable[T]], *, patience: float = PATIENCE,
                   logger: logging.Logger = log) -> T:
    """`await op()`, again after each transient failure until `patience` seconds have passed;
    then, or on any other error, the error is raised."""
    began = time.monotonic()
    delay, attempts = FIRST_DELAY, 0
    while True:
        try:
            result = await op()
        except Exception as exc:
            waited = time.monotonic() - began
            if not transient(exc) or waited + delay > patience:
                if attempts:
                    logger.warning("%s: gave up after %d attempts in %.1fs: %s", what, attempts + 1, waited,
                                   _describe(exc))
                raise
            attempts += 1
            if attempts == 1:
                logger.warning("%s: %s; retrying for up to %gs", what, _describe(exc), patience)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            continue
        if attempts:
            logger.info("%s: done after %d retries in %.1fs", what, attempts, time.monotonic() - began)
        return result


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
