"""Human-readable lines for results and status (the CLI's `--json` prints the Structs instead)."""

from __future__ import annotations

from collections import Counter

from reverie.protocol import Decision, Result, ResultStatus

from .client import SwarmStatus


def rejections_by_critic(result: Result) -> Counter[str]:
    """How many candidates each critic rejected or flagged, over the whole dream."""
    counts: Counter[str] = Counter()
    for rnd in result.trace:
        for judged in rnd.candidates:
            for verdict in judged.verdicts:
                if verdict.decision is not Decision.ACCEPT:
                    counts[verdict.critic] += 1
    return counts


def format_result(result: Result, *, title: str = "") -> str:
    candidates = sum(len(r.candidates) for r in result.trace)
    flagged = sum(1 for r in result.trace for j in r.candidates if j.outcome is Decision.FLAG)
    head = title or result.task_id
    lines = [f"{head}: {result.status.value} after {result.rounds} round(s), "
             f"{candidates} candidate(s), {result.elapsed * 1000:.0f} ms"]
    if result.status is ResultStatus.ACCEPTED and result.accepted is not None:
        lines.append(f"  path: {result.accepted.candidate.text or ' -> '.join(result.accepted.candidate.steps)}")
        if isinstance(result.answer, dict) and "duration" in result.answer:
            lines.append(f"  duration {result.answer['duration']:g}, risk {result.answer.get('risk', 0):g}")
    elif result.reason:
        lines.append(f"  why: {result.reason}")
    if result.usage is not None:
        u = result.usage
        cost = f", ${u.cost_usd:.4f}" if u.cost_usd is not None else ", no price for the model"
        batched = f" ({u.batched} batched)" if u.batched else ""
        lines.append(f"  model: {u.requests} request(s){batched}, {u.prompt_tokens:,} input tokens "
                     f"({u.cache_read_input_tokens:,} from cache, {u.cache_creation_input_tokens:,} written to it), "
                     f"{u.output_tokens:,} output{cost}")
    rejections = rejections_by_critic(result)
    if rejections:
        per = ", ".join(f"{critic} {n}" for critic, n in sorted(rejections.items()))
        lines.append(f"  rejections by critic: {per}" + (f" ({flagged} flagged harmful, quarantined)" if flagged else ""))
    for rnd in result.trace:
        for judged in rnd.candidates:
            if judged.outcome is Decision.ACCEPT:
                continue
            why = "; ".join(f"{v.critic}: {r.text}" for v in judged.verdicts for r in v.reasons)
            lines.append(f"    round {rnd.round} #{judged.candidate.index} {judged.outcome.value}: {why}")
    return "\n".join(lines)


def format_status(status: SwarmStatus) -> str:
    lines = [f"swarm {status.swarm} on {status.url}: {len(status.agents)} live agent(s), "
             f"{status.tasks_queued} task(s) queued or in flight, {status.results_stored} result(s) stored"]
    for a in status.agents:
        c = a.counters
        lines.append(f"  {f'{a.agent}.{a.replica}':<16} pid {a.pid:<7} {a.role:<8} {a.state.value:<8} "
                     f"in flight {a.in_flight:<3} handled {c.get('handled', 0):<6} errors {c.get('errors', 0)}")
    return "\n".join(lines)
