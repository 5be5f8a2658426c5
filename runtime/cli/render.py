"""Human-readable lines for results and status (the CLI's `--json` prints the Structs instead)."""

from __future__ import annotations

from collections import Counter

import msgspec

from reverie.protocol import Decision, Result, ResultStatus, TaskProgress, Usage

from ..client import SwarmStatus

__all__ = ["format_result", "format_round", "format_status", "rejections_by_critic"]


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
    answer = result.answer if isinstance(result.answer, dict) else {}
    if result.status is ResultStatus.ACCEPTED and result.accepted is not None and isinstance(answer.get("patch"), str):
        cand = result.accepted.candidate
        lines.append(f"  accepted: {cand.rationale or 'a patch'}")
        lines.append("  patch:")
        lines += [f"    {line}" for line in answer["patch"].splitlines()]
    elif result.status is ResultStatus.ACCEPTED and result.accepted is not None and result.accepted.candidate.steps:
        lines.append(f"  path: {result.accepted.candidate.text or ' -> '.join(result.accepted.candidate.steps)}")
        if "duration" in answer:
            lines.append(f"  duration {answer['duration']:g}, risk {answer.get('risk', 0):g}")
    elif result.status is ResultStatus.ACCEPTED:  # any other kind: what the task answered
        shown = answer["text"] if isinstance(answer.get("text"), str) and len(answer) == 1 else result.answer
        text = shown if isinstance(shown, str) else msgspec.json.encode(shown).decode()
        lines.append(f"  answer: {text if len(text) <= 2000 else text[:2000] + '...'}")
    elif result.reason:
        lines.append(f"  why: {result.reason}")
    if result.recalled:
        lines.append(f"  lessons: {result.recalled} recalled from earlier, similar tasks")
    if result.usage is not None:
        lines.append(f"  model: {_usage_line(result.usage)}")
        if len(result.usage_by_agent) > 1:
            for agent, used in sorted(result.usage_by_agent.items()):
                lines.append(f"    {agent}: {_usage_line(used)}")
    rejections = rejections_by_critic(result)
    if rejections:
        per = ", ".join(f"{critic} {n}" for critic, n in sorted(rejections.items()))
        harmful = f" ({flagged} flagged harmful, quarantined)" if flagged else ""
        lines.append(f"  rejections by critic: {per}{harmful}")
    for rnd in result.trace:
        for judged in rnd.candidates:
            if judged.outcome is Decision.ACCEPT:
                continue
            why = [f"{v.critic}: {' '.join(r.text.split())}" for v in judged.verdicts for r in v.reasons]
            why += [f"{m.critic} gave no verdict ({m.code}: {m.message})" for m in judged.why_missing]
            why += [f"{c} gave no verdict" for c in judged.missing if c not in {m.critic for m in judged.why_missing}]
            cand = judged.candidate
            what = f" ({_first_line(cand.rationale)})" if cand.artifact is not None and cand.rationale else ""
            lines.append(f"    round {rnd.round} #{judged.candidate.index}{what} {judged.outcome.value}: "
                         f"{'; '.join(why)}")
    return "\n".join(lines)


def format_round(event: TaskProgress) -> str:
    """One line for a round as it happens: its candidates, and the reasons that steer the next."""
    r = event.round
    outcomes = Counter(j.outcome for j in r.candidates)
    counts = ", ".join(f"{outcomes[d]} {word}" for d, word in ((Decision.ACCEPT, "accepted"),
                                                              (Decision.REJECT, "rejected"),
                                                              (Decision.FLAG, "flagged")) if outcomes[d])
    reasons = list(dict.fromkeys(f"{v.critic}: {' '.join(x.text.split())}" for j in r.candidates
                                 for v in j.verdicts for x in v.reasons))
    reasons += [f"{m.critic} gave no verdict ({m.code})" for j in r.candidates for m in j.why_missing]
    why = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    return (f"  round {r.round}/{event.max_rounds}: {len(r.candidates)} candidate(s), {counts or 'none judged'}"
            f" ({r.elapsed:.1f}s)" + (f": {why}" if why else ""))


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _usage_line(u: Usage) -> str:
    cost = f", ${u.cost_usd:.4f}" if u.cost_usd is not None else ""
    if u.unpriced:
        cost += f" (not counting {', '.join(u.unpriced)}: no price; add it under `prices`)"
    batched = f" ({u.batched} batched)" if u.batched else ""
    return (f"{u.requests} request(s){batched}, {u.prompt_tokens:,} input tokens "
            f"({u.cache_read_input_tokens:,} from cache, {u.cache_creation_input_tokens:,} written to it), "
            f"{u.output_tokens:,} output{cost}")


def format_status(status: SwarmStatus) -> str:
    lines = [f"swarm {status.swarm} on {status.url}: {len(status.agents)} live agent(s), "
             f"{status.tasks_queued} task(s) queued or in flight, {status.results_stored} result(s) stored"]
    for a in status.agents:
        c = a.counters
        where = f" on {a.host or '?'} via {a.node or '?'}" if a.host or a.node else ""
        lines.append(f"  {f'{a.agent}.{a.replica}':<16} pid {a.pid:<7} {a.role:<8} {a.state.value:<8} "
                     f"in flight {a.in_flight:<3} handled {c.get('handled', 0):<6} errors {c.get('errors', 0)}{where}")
    return "\n".join(lines)
