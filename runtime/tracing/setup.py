"""Setting up OpenTelemetry's SDK in a process reverie owns (an agent worker, the CLI).

A library must not install a global tracer provider in an application's process, so the Python
client never calls this: an application that wants traces sets up its own provider, and
`Swarm.submit` spans go to it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from opentelemetry import trace

from ..config import SwarmConfig, TracingConfig, config_path
from ..errors import TracingUnavailable

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["Tracing", "check_tracing", "exporter_name", "start_tracing", "tracing_for"]

_ENV_EXPORTERS = {"otlp", "console"}
_OTLP = "the OTLP exporter (opentelemetry-exporter-otlp-proto-http)"


class Tracing(Protocol):
    """What `start_tracing` returns: the provider it set, to flush and stop on exit."""

    def shutdown(self) -> None: ...


def exporter_name(tracing: TracingConfig) -> str:
    """The exporter the config names, else the one `OTEL_TRACES_EXPORTER` names (otlp, console), else none."""
    if tracing.exporter != "none":
        return tracing.exporter
    env = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return env if env in _ENV_EXPORTERS else "none"


def check_tracing(config: SwarmConfig) -> None:
    """Raise `TracingUnavailable` when `[tracing]` names an exporter whose packages are not installed."""
    name = exporter_name(config.tracing)
    if name == "none":
        return
    if not _installed("opentelemetry.sdk.trace"):
        raise TracingUnavailable(name, "the OpenTelemetry SDK (opentelemetry-sdk)")
    if name == "otlp" and not _installed("opentelemetry.exporter.otlp.proto.http"):
        raise TracingUnavailable(name, _OTLP)


def start_tracing(config: SwarmConfig, *, service: str, instance: str = "") -> Tracing | None:
    """Install a global tracer provider exporting as `[tracing]` says; None when traces are off.
    Spans are batched: call `shutdown()` before the process exits, or the last ones are lost.
    Raises `TracingUnavailable` when the SDK or the exporter's package is not installed."""
    name = exporter_name(config.tracing)
    if name == "none":
        return None
    check_tracing(config)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    resource = Resource.create({
        "service.name": service,
        "service.namespace": f"reverie.{config.swarm}",
        "service.instance.id": instance or f"{service}@{socket.gethostname()}:{os.getpid()}",
    })
    ratio = config.tracing.sample_ratio
    provider = TracerProvider(resource=resource,
                              sampler=ParentBased(ALWAYS_ON if ratio >= 1 else TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(_exporter(name, config, service)))
    trace.set_tracer_provider(provider)
    return provider


@contextmanager
def tracing_for(config: SwarmConfig, *, service: str, instance: str = "") -> Iterator[Tracing | None]:
    """`start_tracing` for a block, its spans exported when the block ends (a CLI command)."""
    tracing = start_tracing(config, service=service, instance=instance)
    try:
        yield tracing
    finally:
        if tracing is not None:
            tracing.shutdown()


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _exporter(name: str, config: SwarmConfig, service: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter(out=sys.stderr)
    if name == "file":
        from .jsonl import jsonl_exporter
        folder = config_path(config, config.tracing.path)
        return jsonl_exporter(folder / f"{service}-{os.getpid()}.jsonl")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=config.tracing.endpoint)
