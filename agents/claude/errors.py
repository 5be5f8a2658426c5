"""The errors of calling Claude: fatal ones fail the task at once, an unavailable API is waited out."""

from __future__ import annotations

from reverie.protocol import ReverieError

__all__ = ["ClaudeConfigError", "ClaudeFatal", "ClaudeOutage", "ClaudeUnavailable", "key_hint"]


class ClaudeFatal(ReverieError):
    """Retrying cannot help (bad key, spend limit, unknown model, invalid request): the task
    fails at once with this message."""


class ClaudeConfigError(ClaudeFatal):
    """An option the model (or the API version the SDK speaks) refuses; `field` names it."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class ClaudeOutage(ClaudeFatal):
    """Claude stayed unavailable past `outage_limit` or the task's time budget: the task ends
    `failed` with the API's last message."""


class ClaudeUnavailable(Exception):
    """One call failed after every retry (connection lost, 5xx, 529, a long `retry-after`).
    Not a `ReverieError`: `Claude.create` waits it out (the outage policy); `retry_after` is the
    server's word on when to come back, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def key_hint(api_key_env: str) -> str:
    """What to do about a missing or refused API key."""
    return (f"set {api_key_env} to an Anthropic API key (https://console.anthropic.com/settings/keys), "
            f"or name another variable with api_key_env")
