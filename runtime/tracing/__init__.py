"""Traces of the swarm's work (OpenTelemetry): spans, W3C trace context in message headers,
and the SDK's setup for the processes reverie runs (`[tracing]` in the deploy config)."""

from .setup import Tracing, check_tracing, exporter_name, start_tracing, tracing_for
from .spans import INSTRUMENTATION, SpanKind, context_of, span, trace_headers, tracer

__all__ = [
    "INSTRUMENTATION",
    "SpanKind",
    "Tracing",
    "check_tracing",
    "context_of",
    "exporter_name",
    "span",
    "start_tracing",
    "trace_headers",
    "tracer",
    "tracing_for",
]
