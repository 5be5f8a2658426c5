"""Spans and W3C trace context for reverie's messages, on the OpenTelemetry API alone.

The API is a no-op until a tracer provider is set (`start_tracing`, or the application's own),
so an untraced swarm pays a function call per span and sends no trace headers: `inject` adds
`traceparent` only while a valid span is current, and `extract` finds a parent only in a
message that carries one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

__all__ = ["INSTRUMENTATION", "SpanKind", "context_of", "span", "trace_headers", "tracer"]

INSTRUMENTATION = "reverie"
"""The instrumentation scope of reverie's own spans (the anthropic SDK's are its own)."""


def tracer() -> trace.Tracer:
    """reverie's tracer from the global provider (looked up each time: a provider set later counts)."""
    return trace.get_tracer(INSTRUMENTATION)


@contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, parent: Context | None = None,
         attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[Span]:
    """A span made current for the block (the parent: `parent`, else the current span); an
    exception escaping the block is recorded on it and sets its status to error."""
    with tracer().start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as s:
        yield s


def trace_headers(headers: dict[str, str] | None = None) -> dict[str, str] | None:
    """`headers` plus the current span's trace context (`traceparent`, `tracestate`), or
    `headers` as they are when no span is current: an untraced message carries nothing more."""
    if not trace.get_current_span().get_span_context().is_valid:
        return headers
    out = dict(headers or {})
    propagate.inject(out)
    return out


def context_of(headers: Mapping[str, str] | None) -> Context | None:
    """The trace context a message carries (its sender's span as the parent), or None."""
    if not headers or "traceparent" not in headers:
        return None
    return propagate.extract(headers)
