"""What Claude costs: the price table, a response's cost, and our `Usage` of it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from reverie.protocol import Usage

from .models import model_entry

if TYPE_CHECKING:
    from .options import ClaudeOptions

__all__ = ["DEFAULT_PRICES", "Price", "cost_of", "price_of", "say_unpriced", "usage_of"]

log = logging.getLogger("reverie.claude")


class Price(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """USD per million tokens. Unset cache rates follow Anthropic's general multipliers (5-minute
    writes 1.25x input, 1-hour writes 2x, reads 0.1x); the built-in table sets every model's own,
    because several differ (reads are 0.05x on Opus 5.5 and Sonnet 5.5, 0.025x on Fable 5.1/5.2).
    The Message Batches API halves everything. `long_prompt_tokens`: a request whose prompt
    (input + cache reads + cache writes) is longer pays every rate times `long_prompt_factor`
    (Haiku 5.5: over 100,000 tokens, 5x)."""

    input: float
    output: float
    cache_write: float | None = None
    cache_write_1h: float | None = None
    cache_read: float | None = None
    batch_discount: float = 0.5
    long_prompt_tokens: int | None = None
    long_prompt_factor: float = 1.0


def _p(input: float, output: float, write: float, write_1h: float, read: float, **kw: Any) -> Price:
    return Price(input=input, output=output, cache_write=write, cache_write_1h=write_1h, cache_read=read, **kw)


DEFAULT_PRICES: dict[str, Price] = {
    # platform.claude.com/docs pricing and model pages, read 2026-12 (Fable/Mythos 5.2 cache rates:
    # 0.025x input, as Fable 5.1); Claude Mythos Preview has no public price
    "claude-fable-5-2": _p(8.0, 40.0, 10.0, 16.0, 0.20),
    "claude-mythos-5-2": _p(8.0, 40.0, 10.0, 16.0, 0.20),
    "claude-fable-5-1": _p(10.0, 50.0, 12.5, 20.0, 0.25),
    "claude-mythos-5-1": _p(10.0, 50.0, 12.5, 20.0, 0.25),
    "claude-fable-5": _p(10.0, 50.0, 12.5, 20.0, 1.0),
    "claude-mythos-5": _p(10.0, 50.0, 12.5, 20.0, 1.0),
    "claude-opus-5-5": _p(4.0, 20.0, 5.0, 8.0, 0.20),
    "claude-opus-5": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-sonnet-5-5": _p(2.0, 10.0, 2.5, 4.0, 0.10),
    "claude-sonnet-5": _p(2.0, 10.0, 2.5, 4.0, 0.20),
    "claude-haiku-5-5": _p(0.10, 0.50, 0.125, 0.20, 0.01, long_prompt_tokens=100_000, long_prompt_factor=5.0),
    "claude-opus-4-8": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-opus-4-7": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-opus-4-6": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-opus-4-5": _p(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-sonnet-4-6": _p(3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-sonnet-4-5": _p(3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-haiku-4-5": _p(1.0, 5.0, 1.25, 2.0, 0.10),
}
"""Matched by the longest model id the model starts with (`claude-haiku-4-5-20251001` is
`claude-haiku-4-5`); `prices` in the deploy config adds to and overrides these."""


def price_of(options: ClaudeOptions) -> Price | None:
    """The price of the options' model: `prices` over `DEFAULT_PRICES`; None if neither has it."""
    table = DEFAULT_PRICES | options.prices
    entry = model_entry(options.model, table)
    return table[entry] if entry is not None else None


def cost_of(usage: Any, price: Price | None, *, batched: bool) -> float | None:
    """USD for one response's `usage` (an SDK `Usage` or anything with its token fields; a
    `cache_creation` breakdown prices 1-hour writes at their own rate)."""
    if price is None:
        return None
    write = price.cache_write if price.cache_write is not None else price.input * 1.25
    write_1h = price.cache_write_1h if price.cache_write_1h is not None else price.input * 2.0
    read = price.cache_read if price.cache_read is not None else price.input * 0.1
    fresh, out = usage.input_tokens or 0, usage.output_tokens or 0
    written = getattr(usage, "cache_creation_input_tokens", 0) or 0
    cached = getattr(usage, "cache_read_input_tokens", 0) or 0
    split = getattr(usage, "cache_creation", None)
    hour = min((getattr(split, "ephemeral_1h_input_tokens", 0) or 0) if split is not None else 0, written)
    total = (fresh * price.input + out * price.output + (written - hour) * write + hour * write_1h
             + cached * read) / 1e6
    if price.long_prompt_tokens is not None and fresh + written + cached > price.long_prompt_tokens:
        total *= price.long_prompt_factor
    return total * (price.batch_discount if batched else 1.0)


def usage_of(usage: Any, price: Price | None, model: str, *, batched: bool) -> Usage:
    """Our `Usage` of one response's SDK usage, priced (`unpriced` names a model without a price)."""
    return Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0,
                 cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
                 cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
                 requests=1, batched=int(batched), cost_usd=cost_of(usage, price, batched=batched) or 0.0,
                 unpriced=() if price is not None else (model,))


_said_unpriced: set[str] = set()


def say_unpriced(model: str) -> None:
    """Warn, once per model, that its costs go unreported."""
    if model not in _said_unpriced:
        _said_unpriced.add(model)
        log.warning("no price for model %s: costs are not reported (add it under `prices` in the config)", model)
