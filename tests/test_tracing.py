"""Traces (`[tracing]`, the `otel` extra): one trace per task across the swarm's processes, with
W3C trace context in the NATS headers, and the GenAI spans of model calls and sandbox runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from reverie.protocol import Result, ResultStatus
from reverie.runtime import ConfigError, Supervisor, SwarmConfig, connect, load_config, parse_config
from reverie.runtime.sandbox import Sandbox
from reverie.runtime.tracing import span, trace_headers
from reverie.runtime.tracing.jsonl import span_record

from .conftest import LOCAL_AGENTS, load_task
from .fakes.claude_fixtures import GOOD, candidate, solve
from .fakes.messages_api import FakeAnthropic, Reply

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """This process's spans, in memory: the global tracer provider is set once per session
    (OpenTelemetry refuses to replace it), and the spans are cleared around each test."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines()]


def _named(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["name"] == name]


def _verdicts(result: Result) -> set[tuple[str, str, str]]:
    return {(v.critic, j.candidate.id, v.decision.value) for r in result.trace for j in r.candidates
            for v in j.verdicts}


async def test_a_task_is_one_trace_across_processes(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    path = tmp_path / "swarm.toml"
    path.write_text('swarm = "traced"\ndata_dir = "data"\n[tracing]\nexporter = "file"\npath = "traces"\n'
                    + LOCAL_AGENTS)
    config = load_config(path)
    with (tmp_path / "swarm.log").open("w") as log:
        async with Supervisor(config, out=log), connect(config) as swarm:
            result = await swarm.submit(load_task("db-migration"), kind="plan", timeout=60)
    assert result.status is ResultStatus.ACCEPTED and result.rounds >= 2
    # the supervisor has stopped: every worker exported its spans on the way out
    [submit] = [s for s in spans.get_finished_spans() if s.name == "submit plan"]
    mine = span_record(submit)
    assert mine["kind"] == "PRODUCER" and mine["attributes"]["reverie.task.id"] == result.task_id
    assert mine["attributes"]["reverie.result.status"] == "accepted"
    records = [r for r in _records(tmp_path / "traces") if r["trace_id"] == mine["trace_id"]]

    [dream] = _named(records, "invoke_agent dreamer")  # in the dreamer's process, child of the client's span
    assert dream["parent_id"] == mine["span_id"] and dream["service"] == "dreamer"
    assert dream["kind"] == "CONSUMER"
    assert dream["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert dream["attributes"]["gen_ai.agent.name"] == "dreamer"
    assert dream["attributes"]["reverie.task.id"] == result.task_id
    assert dream["attributes"]["reverie.result.status"] == "accepted"

    rounds = _named(records, "dream round")
    assert sorted(r["attributes"]["reverie.round"] for r in rounds) == list(range(1, result.rounds + 1))
    assert {r["parent_id"] for r in rounds} == {dream["span_id"]}
    judging = _named(records, "judge candidate")
    assert len(judging) == sum(len(r.candidates) for r in result.trace)
    assert {j["parent_id"] for j in judging} <= {r["span_id"] for r in rounds}
    by_candidate = {j["attributes"]["reverie.candidate.id"]: j for j in judging}

    seen: set[tuple[str, str, str]] = set()
    for critic in ("rules", "planner", "budget"):  # each critic's verdicts, each in its own process
        for v in _named(records, f"invoke_agent {critic}"):
            cand = v["attributes"]["reverie.candidate.id"]
            assert v["service"] == critic and v["kind"] == "CONSUMER"
            assert v["parent_id"] == by_candidate[cand]["span_id"]  # across the process boundary
            seen.add((critic, cand, v["attributes"]["reverie.verdict.decision"]))
    assert seen == _verdicts(result)
    assert len({r["service"] for r in records}) == 4  # dreamer and three critics, all in one trace
    assert len(list((tmp_path / "traces").glob("*.jsonl"))) >= 4  # a file per process
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in (tmp_path / "traces").glob("*.jsonl"))


async def test_model_calls_are_gen_ai_spans_under_their_round(fake: FakeAnthropic, claude_config: SwarmConfig,
                                                              nats_url: str, spans: InMemorySpanExporter) -> None:
    fake.script(Reply.tools("propose_candidate", [candidate(["backup", "migrate"], "quick")]),
                Reply.tools("propose_candidate", [candidate(GOOD, "backup first, verify before traffic")]))
    result = await solve(claude_config, nats_url)
    assert result.status is ResultStatus.ACCEPTED and result.rounds == 2
    finished = spans.get_finished_spans()
    rounds = {s.context.span_id: s for s in finished if s.name == "dream round"}
    calls = [s for s in finished if s.attributes and s.attributes.get("gen_ai.operation.name") == "chat"]
    assert calls, [s.name for s in finished]
    for call in calls:  # the anthropic SDK's own span, parented by the round that asked
        assert call.parent is not None and call.parent.span_id in rounds
        attrs = dict(call.attributes or {})
        assert attrs["gen_ai.provider.name"] == "anthropic"
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
        assert str(attrs["gen_ai.request.model"]).startswith("claude")
    # and the SDK sent each call's trace context on to the API
    sent = {r.headers.get("traceparent", "").split("-")[2] for r in fake.message_requests()}
    assert {format(c.context.span_id, "016x") for c in calls} <= sent
    assert sum(r.attributes["reverie.candidates"] for r in rounds.values()  # type: ignore[index,misc]
               ) == sum(len(r.candidates) for r in result.trace)


async def test_a_sandbox_run_is_an_execute_tool_span(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    (tmp_path / "ok.py").write_text("print('ok')\n")
    with span("judge") as parent:
        outcome = await Sandbox().run(tmp_path, "python ok.py")
    assert outcome.passed
    [run] = [s for s in spans.get_finished_spans() if s.name == "execute_tool sandbox"]
    assert run.parent is not None and run.parent.span_id == parent.get_span_context().span_id
    attrs = dict(run.attributes or {})
    assert attrs["gen_ai.operation.name"] == "execute_tool" and attrs["gen_ai.tool.name"] == "sandbox"
    assert attrs["process.exit.code"] == 0 and attrs["reverie.sandbox.timed_out"] is False


async def test_untraced_messages_carry_no_trace_headers(spans: InMemorySpanExporter, nats_url: str) -> None:
    from reverie.protocol import StatusRequest
    from reverie.runtime import Bus

    assert trace_headers() is None and trace_headers({"Nats-Msg-Id": "x"}) == {"Nats-Msg-Id": "x"}
    async with await Bus.connect([nats_url], swarm="t", name="probe") as bus:
        got: asyncio.Queue[Any] = asyncio.Queue()
        sub = await bus.nc.subscribe("probe.>", cb=got.put)
        await bus.publish("probe.plain", StatusRequest())
        with span("sender") as s:
            await bus.publish("probe.traced", StatusRequest())
        plain, traced = await asyncio.wait_for(got.get(), 10), await asyncio.wait_for(got.get(), 10)
        await sub.unsubscribe()
    assert not plain.headers
    version, trace_id, span_id, _ = traced.headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", format(s.get_span_context().trace_id, "032x"),
                                           format(s.get_span_context().span_id, "016x"))


def test_tracing_config_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tracing\.exporter"):
        parse_config('swarm = "s"\n[tracing]\nexporter = "jaeger"\n' + LOCAL_AGENTS, source="<t>", data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"tracing\.sample_ratio"):
        parse_config('swarm = "s"\n[tracing]\nsample_ratio = 2\n' + LOCAL_AGENTS, source="<t>", data_dir=tmp_path)


def test_up_without_the_sdk_says_what_to_install(tmp_path: Path) -> None:
    """`reverie up` with `[tracing]` on and no OpenTelemetry SDK: a clear error before any process starts."""
    path = tmp_path / "swarm.toml"
    path.write_text('swarm = "nosdk"\ndata_dir = "data"\n[tracing]\nexporter = "otlp"\n' + LOCAL_AGENTS)
    script = textwrap.dedent(f"""
        import sys
        class Gone:  # as if `pip install reverie` without the otel extra
            def find_spec(self, name, path=None, target=None):
                if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Gone())
        from reverie.runtime.cli import main
        sys.exit(main(["up", {str(path)!r}]))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "exporter = 'otlp' needs the OpenTelemetry SDK" in run.stderr
    assert "pip install 'reverie[otel]'" in run.stderr
    assert not (tmp_path / "data" / "nats").exists()  # nothing was started
