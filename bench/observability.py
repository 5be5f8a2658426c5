"""What metrics and tracing cost a dream round.

One swarm in this process (the offline dreamer and the three plan critics on an embedded
nats-server); tasks run one at a time and each task's time is divided by its rounds. Four modes,
interleaved in blocks on the same swarm:

- off: no tracer provider (OpenTelemetry's no-op API; no trace headers sent), no /metrics;
- metrics: a `MetricsServer` in the same event loop, observing every result and heartbeat
  (in a real swarm it runs in the supervisor's process: this is the worse case);
- tracing: the OpenTelemetry SDK with a batch processor, exporting to a sink that drops spans;
- both;
- both, with one trace in ten kept (`[tracing] sample_ratio = 0.1`).

    python bench/observability.py [--tasks 400] [--blocks 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NoOpTracer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, pct
from reverie.runtime import EmbeddedNats, connect, parse_config, serve_agent
from reverie.runtime.metrics import MetricsServer
from tests.conftest import CRITICS, load_task


class Sink(SpanExporter):
    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


class Switch(trace.TracerProvider):
    """The global provider, whose tracers switch between SDK providers (every trace kept, or one
    in ten: `[tracing] sample_ratio = 0.1`) and the no-op tracer between blocks (reverie gets its
    tracer once)."""

    def __init__(self, sdks: dict[str, TracerProvider]) -> None:
        self.sdks, self.state = sdks, "off"

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return SwitchTracer(self, {k: p.get_tracer(*args, **kwargs) for k, p in self.sdks.items()})


class SwitchTracer(trace.Tracer):
    def __init__(self, switch: Switch, real: dict[str, trace.Tracer]) -> None:
        self.switch, self.real, self.off = switch, real, NoOpTracer()

    def _now(self) -> trace.Tracer:
        return self.real.get(self.switch.state, self.off)

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._now().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._now().start_as_current_span(*args, **kwargs)


AGENTS = """
[[agents]]
name = "dreamer"
kind = "dreamer"
[agents.options]
candidates_per_round = 3
max_rounds = 5
verdict_timeout = 5.0
recall_limit = 0      # every task dreams from scratch: rounds of 3 candidates, not what lessons shortcut
[agents.options.reasoner_options]
seed = 7
""" + CRITICS


async def main(tasks: int, blocks: int) -> None:
    sink = Sink()
    sdks = {"all": TracerProvider(), "tenth": TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))}
    for sdk in sdks.values():
        sdk.add_span_processor(BatchSpanProcessor(sink, max_queue_size=1 << 20))  # none dropped: all are counted
    switch = Switch(sdks)
    trace.set_tracer_provider(switch)
    spec = load_task("db-migration")
    per_round: dict[str, list[float]] = {m: [] for m in ("off", "metrics", "tracing", "both", "both, 10% sampled",
                                                         "off (again)")}
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            url = server.url
            config = parse_config(f'swarm = "obs"\nheartbeat_interval = 2.0\n[nats]\nurl = "{url}"\n{AGENTS}',
                                  data_dir=Path(tmp) / "data")
            async with contextlib.AsyncExitStack() as stack:
                for a in config.agents:
                    await stack.enter_async_context(serve_agent(config, a.name, servers=[url]))
                swarm = await stack.enter_async_context(connect(config, servers=[url]))

                async def run(mode: str, n: int, keep: bool = True) -> None:
                    switch.state = "tenth" if "sampled" in mode else "all" if mode in ("tracing", "both") else "off"
                    async with contextlib.AsyncExitStack() as on:
                        if mode.startswith(("metrics", "both")):
                            await on.enter_async_context(MetricsServer(swarm.bus, 0))
                        for _ in range(n):
                            t = time.perf_counter()
                            result = await swarm.submit(spec, kind="plan", timeout=60)
                            if keep:
                                per_round[mode].append((time.perf_counter() - t) / result.rounds)

                for mode in per_round:  # warm every path
                    await run(mode, 20, keep=False)
                for _ in range(blocks):
                    for mode in per_round:
                        await run(mode, tasks // blocks)
    for sdk in sdks.values():
        sdk.shutdown()
    base = statistics.fmean(per_round["off"])
    print(f"observability cost of one dream round (3 candidates, 3 critics), {machine()}")
    for mode, samples in per_round.items():
        mean = statistics.fmean(samples)
        print(f"{mode:>17}: {len(samples)} tasks, per round mean {mean * 1e3:6.2f} ms, "
              f"p50 {pct(samples, 50) * 1e3:6.2f} ms  | {mean / base:.3f}x of off")
    print(f"spans exported: {sink.spans}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=400, help="tasks per mode")
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.blocks))
