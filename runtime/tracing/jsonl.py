"""A span exporter that appends one JSON object per span to a file (needs `reverie[otel]`).

For a look at a trace without a collector, and for tests: each process writes its own file
(`<dir>/<service>-<pid>.jsonl`), so processes never interleave their lines. The SDK is imported
when an exporter is made: this module imports without the extra installed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["jsonl_exporter", "span_record"]


def _hex(n: int, width: int) -> str:
    return format(n, f"0{width}x")


def span_record(s: ReadableSpan) -> dict[str, object]:
    """A span as one JSON-ready object: ids in W3C hex, times in Unix nanoseconds."""
    ctx = s.get_span_context()
    assert ctx is not None
    return {
        "name": s.name,
        "trace_id": _hex(ctx.trace_id, 32),
        "span_id": _hex(ctx.span_id, 16),
        "parent_id": _hex(s.parent.span_id, 16) if s.parent is not None else None,
        "kind": s.kind.name,
        "start": s.start_time,
        "end": s.end_time,
        "status": s.status.status_code.name,
        "scope": s.instrumentation_scope.name if s.instrumentation_scope else "",
        "service": s.resource.attributes.get("service.name", ""),
        "attributes": dict(s.attributes or {}),
    }


def jsonl_exporter(path: Path) -> SpanExporter:
    """An exporter that appends each exported span to `path` as a line of JSON (created 0600)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class JsonLinesExporter(SpanExporter):
        def __init__(self) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._lock = threading.Lock()

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            data = b"".join(msgspec.json.encode(span_record(s)) + b"\n" for s in spans)
            with self._lock:
                if self._fd < 0:
                    return SpanExportResult.FAILURE
                os.write(self._fd, data)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            with self._lock:
                if self._fd >= 0:
                    os.close(self._fd)
                    self._fd = -1

    return JsonLinesExporter()
