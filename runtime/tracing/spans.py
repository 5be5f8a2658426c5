"""Spans and W3C trace context for reverie's messages, on the OpenTelemetry API alone.

The API is a no-op until a tracer provider is set (`start_tracing`, or the application's own),
so an untraced swarm pays a function call per span and sends no trace headers: `inject` adds
`traceparent` only while a valid span is current, and `extract` finds a parent only in a
message that carries one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

__all__ = ["INSTRUMENTATION", "SpanKind", "context_of", "span", "trace_headers", "tracer"]

INSTRUMENTATION = "reverie"
"""The instrumentation scope of reverie's own spans (the anthropic SDK's are its own)."""


_tracer: trace.Tracer | None = None


def tracer() -> trace.Tracer:
    """reverie's tracer, from the global provider. Got once (an SDK provider's `get_tracer` costs
    as much as a span): before a provider is set it is OpenTelemetry's proxy, which turns into
    the provider's tracer once one is set."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(INSTRUMENTATION)
    return _tracer


class span:  # lowercase: used as a function, `with span("name") as s:`
    """A span made current for the block (the parent: `parent`, else the current span); an
    exception escaping the block is recorded on it and sets its status to error. A class, not a
    generator: a span costs about 20 microseconds, and two generator-based context managers
    (ours and the SDK's) added half as much again."""

    __slots__ = ("_attributes", "_kind", "_name", "_parent", "_span", "_token")

    def __init__(self, name: str, *, kind: SpanKind = SpanKind.INTERNAL, parent: Context | None = None,
                 attributes: Mapping[str, AttributeValue] | None = None) -> None:
        self._name, self._kind, self._parent, self._attributes = name, kind, parent, attributes

    def __enter__(self) -> Span:
        self._span = tracer().start_span(self._name, context=self._parent, kind=self._kind,
                                         attributes=self._attributes)
        self._token = context_api.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        context_api.detach(self._token)
        if isinstance(e, Exception) and self._span.is_recording():
            self._span.record_exception(e)
            self._span.set_status(Status(StatusCode.ERROR, f"{type(e).__name__}: {e}"))
        self._span.end()


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
