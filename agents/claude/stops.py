"""Answers that must never be used: a refusal, and an answer cut off by a token limit."""

from __future__ import annotations

from anthropic.types import Message

__all__ = ["TRUNCATED", "refusal_text", "unusable_stop"]

TRUNCATED = ("max_tokens", "model_context_window_exceeded")
"""Stop reasons after which the last block (a tool call too) may be cut off mid-JSON."""


def refusal_text(message: Message) -> str:
    """The API's own account of a refusal (`stop_details`: category, explanation)."""
    details = message.stop_details
    category = getattr(details, "category", None) or "no category"
    explanation = getattr(details, "explanation", None) or "no explanation given"
    return f"Claude declined the request (stop_reason refusal, {category}): {explanation}"


def unusable_stop(message: Message) -> tuple[str, str] | None:
    """`(code, why)` when nothing of this answer may be judged or acted on as a whole: a refusal.
    A truncated answer is handled per block by the caller (earlier complete calls still count)."""
    if message.stop_reason == "refusal":
        return "refusal", refusal_text(message)
    if message.stop_reason in TRUNCATED and not any(b.type == "tool_use" for b in message.content[:-1]):
        return "truncated", f"the answer was cut off (stop_reason {message.stop_reason}) before a complete tool call"
    return None
