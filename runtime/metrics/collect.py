"""The swarm's Prometheus metrics, computed from what crosses the bus.

Next to nothing in an agent's hot path records anything: every stored `Result` carries the
whole dream (rounds, candidates, verdicts with reasons and latencies, model usage), and every
heartbeat an agent's counters. `SwarmMetrics.observe(result)` turns a result into task, round,
candidate, verdict, reason, verdict-latency and model-token series; `SwarmMetrics.heartbeat(status)`
keeps each replica's latest counters, the durations it recorded among them (`Context.observe`, an
O(1) count; see `reverie.runtime.durations`) and its memory store's size, for a collector that
exposes them. Names follow Prometheus' conventions: a `reverie_` prefix, base units, `_total`
counters, and no task ids in labels.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from reverie.protocol import AgentStatus, Result

from ..durations import PREFIX, RESERVED, durations_of

__all__ = ["LATENCY_BUCKETS", "ROUND_BUCKETS", "SwarmMetrics"]

ROUND_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20)
SECOND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_SEEN = 100_000
"""Task ids remembered, so a result stored again (republished after a restart) counts once."""


class _Heartbeats(Collector):
    """Each live replica's latest heartbeat: its counters as `reverie_agent_events_total`, the
    durations it recorded as `reverie_<name>_seconds` histograms, its memory store's size."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, int], AgentStatus] = {}

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily("reverie_agent_events", "What each agent replica counted (its "
                                     "`ctx.counters`: handled, errors, bad input by reason, gossip, sandbox runs...)",
                                     labels=["agent", "replica", "event"])
        in_flight = GaugeMetricFamily("reverie_agent_in_flight", "Messages an agent replica is working on",
                                      labels=["agent", "replica"])
        states = GaugeMetricFamily("reverie_agent_up", "1 for each agent replica that sent a heartbeat, by state",
                                   labels=["agent", "replica", "role", "state"])
        memory = GaugeMetricFamily("reverie_memory_store_bytes", "Bytes an agent replica's open memory store "
                                   "uses (LMDB pages in use times the page size)", labels=["agent", "replica"])
        durations: dict[str, HistogramMetricFamily] = {}
        for (agent, replica), st in sorted(self.latest.items()):
            for event, n in sorted(st.counters.items()):
                if not event.startswith(PREFIX):  # durations are histograms of their own
                    events.add_metric([agent, str(replica), event], n)
            for name, d in sorted(durations_of(st.counters).items()):
                if name in RESERVED:
                    continue
                family = durations.get(name)
                if family is None:
                    family = durations[name] = HistogramMetricFamily(
                        f"reverie_{name}_seconds", f"Seconds of {name}, as agent replicas recorded them (ctx.observe)",
                        labels=["agent", "replica"])
                family.add_metric([agent, str(replica)], [(_le(le), n) for le, n in d.cumulative()],
                                  sum_value=d.sum)
            if st.memory_bytes > 0:
                memory.add_metric([agent, str(replica)], st.memory_bytes)
            in_flight.add_metric([agent, str(replica)], st.in_flight)
            states.add_metric([agent, str(replica), st.role, st.state.value], 1)
        yield events
        yield in_flight
        yield states
        yield memory
        yield from durations.values()


class SwarmMetrics:
    """One registry for the whole swarm (served by `reverie up --metrics-port`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tasks = Counter("reverie_tasks", "Tasks finished, by kind and status", ["kind", "status"], registry=r)
        self.rounds = Histogram("reverie_task_rounds", "Rounds a finished task took", ["kind"],
                                buckets=ROUND_BUCKETS, registry=r)
        self.seconds = Histogram("reverie_task_duration_seconds", "Seconds a finished task spent dreaming",
                                 ["kind"], buckets=SECOND_BUCKETS, registry=r)
        self.candidates = Counter("reverie_candidates_judged", "Candidates judged, by the dreamer's decision",
                                  ["kind", "outcome"], registry=r)
        self.verdicts = Counter("reverie_verdicts", "Verdicts, by critic and decision", ["critic", "decision"],
                                registry=r)
        self.reasons = Counter("reverie_rejection_reasons", "Reasons critics gave against candidates, by code",
                               ["critic", "code"], registry=r)
        self.latency = Histogram("reverie_verdict_latency_seconds", "Seconds from a dreamer's request to each "
                                 "critic's verdict it kept, by critic", ["critic"], buckets=LATENCY_BUCKETS, registry=r)
        self.missing = Counter("reverie_missing_verdicts", "Verdicts a critic did not give, by why",
                               ["critic", "code"], registry=r)
        self.tokens = Counter("reverie_model_tokens", "Model tokens, by the agent that spent them and type",
                              ["agent", "type"], registry=r)
        self.cost = Counter("reverie_model_cost_usd", "Model cost in US dollars, by agent", ["agent"], registry=r)
        self.beats = _Heartbeats()
        r.register(self.beats)
        self._seen: OrderedDict[str, None] = OrderedDict()

    def observe(self, result: Result) -> bool:
        """Count one finished task; False for a task already counted."""
        if result.task_id in self._seen:
            return False
        self._seen[result.task_id] = None
        if len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        judged = [j for r in result.trace for j in r.candidates]
        kind = judged[0].candidate.task.kind if judged else "unknown"
        self.tasks.labels(kind, result.status.value).inc()
        self.rounds.labels(kind).observe(result.rounds)
        self.seconds.labels(kind).observe(result.elapsed)
        for j in judged:
            self.candidates.labels(kind, j.outcome.value).inc()
            for v in j.verdicts:
                self.verdicts.labels(v.critic, v.decision.value).inc()
                for reason in v.reasons if v.decision.value != "accept" else ():
                    self.reasons.labels(v.critic, reason.code).inc()
            for m in j.why_missing:
                self.missing.labels(m.critic, m.code).inc()
            for critic, seconds in j.latency.items():
                self.latency.labels(critic).observe(seconds)
        for agent, used in result.usage_by_agent.items():
            for kind_of, n in (("input", used.input_tokens), ("output", used.output_tokens),
                               ("cache_write", used.cache_creation_input_tokens),
                               ("cache_read", used.cache_read_input_tokens)):
                if n:
                    self.tokens.labels(agent, kind_of).inc(n)
            if used.cost_usd:
                self.cost.labels(agent).inc(used.cost_usd)
        return True

    def heartbeat(self, status: AgentStatus) -> None:
        self.beats.latest[(status.agent, status.replica)] = status


def _le(bound: float) -> str:
    """A bucket's `le` label as prometheus_client writes it (`0.005`, `1.0`, `+Inf`)."""
    return "+Inf" if bound == math.inf else repr(float(bound))
