"""The web view's HTML: server-rendered strings, every value through `html.escape`, inline CSS and
one inline script (`script.SCRIPT`), no external asset (the pages work without network access).
The server renders everything a page shows; the script only keeps it current (the index's tables,
a task page waiting for its result) and, with actions on, sends the forms and buttons. Without
JavaScript the index reloads itself every `REFRESH_SECONDS` instead, and the action controls stay
disabled."""

from __future__ import annotations

import time
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import quote

import msgspec

from reverie.protocol import (
    AgentStatus,
    Decision,
    JudgedCandidate,
    MissingVerdict,
    Patch,
    Result,
    TaskInfo,
    Text,
    Verdict,
    artifact_of,
)

from .results import TaskRow, task_kind
from .script import POLL_SECONDS, SCRIPT

__all__ = ["CSS", "REFRESH_SECONDS", "render_index", "render_not_found", "render_task", "render_waiting"]

REFRESH_SECONDS = 5
"""How often the index page reloads itself in a browser without JavaScript (with it, the script
updates the tables in place every `POLL_SECONDS`)."""

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; } a { color: #1558b0; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25em .6em; }
th { border-bottom: 2px solid #ccc; } td { border-bottom: 1px solid #eee; vertical-align: top; }
.muted { color: #777; } code, pre { font: 12.5px/1.35 ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; margin: .4em 0; }
.status-accepted { color: #17692b; } .status-exhausted { color: #9a6700; } .status-failed { color: #b3261e; }
.round { margin: 1em 0; padding-left: .8em; border-left: 3px solid #ddd; }
.candidate { margin: .6em 0; padding: .5em .8em; border: 1px solid #ddd; border-left-width: 6px; border-radius: 4px; }
.candidate.accepted { border-color: #2da44e; background: #f3fbf5; }
.candidate.rejected { border-color: #d0d7de; border-left-color: #9a6700; opacity: .85; }
.candidate.flagged { border-color: #b3261e; background: #fdf1f0; }
.candidate.chosen { box-shadow: 0 0 0 2px #2da44e; }
.badge { display: inline-block; font-size: .8em; padding: 0 .5em; border-radius: 1em; background: #eee; }
.accepted > .head .badge { background: #2da44e; color: #fff; }
.rejected > .head .badge { background: #9a6700; color: #fff; }
.flagged > .head .badge { background: #b3261e; color: #fff; }
ul.verdicts { margin: .3em 0; padding-left: 1.2em; } .reason { margin-left: 1em; }
.decision-accept { color: #17692b; } .decision-reject { color: #9a6700; } .decision-flag { color: #b3261e; }
.diff .add { color: #17692b; } .diff .del { color: #b3261e; } .diff .hunk { color: #6e40c9; }
fieldset { border: 1px solid #ddd; border-radius: 4px; margin: .6em 0; } legend { font-weight: 600; }
textarea { width: 100%; box-sizing: border-box; font: 12.5px/1.35 ui-monospace, monospace; }
td.acts button, .acts button { font-size: .85em; margin-right: .3em; }
.out { margin: .4em 0; min-height: 1.4em; } .out.good { color: #17692b; } .out.bad { color: #b3261e; }
"""

_OUTCOME_CLASS = {Decision.ACCEPT: "accepted", Decision.REJECT: "rejected", Decision.FLAG: "flagged"}
_OUTCOME_LABEL = {Decision.ACCEPT: "accepted", Decision.REJECT: "rejected (pruned)",
                  Decision.FLAG: "flagged (quarantined)"}


def _page(title: str, body: str, *, refresh: bool = False, data: dict[str, str] | None = None) -> str:
    """A page; with `data` (its body's `data-*` attributes: the script's settings) it runs the script."""
    meta = f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>' if refresh else ""
    attrs = "".join(f' data-{k}="{escape(v)}"' for k, v in (data or {}).items())
    script = f"<script>{SCRIPT}</script>" if data is not None else ""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">{meta}'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body{attrs}>\n{body}\n{script}</body></html>\n")


def _settings(page: str, actions: bool, **more: str) -> dict[str, str]:
    return {"page": page, "poll": str(POLL_SECONDS), "actions": "1" if actions else "0", **more}


def _buttons(task_id: str, state: str) -> str:
    """Pause (or resume, when paused) and cancel; disabled until the script runs."""
    return "".join(f'<button type="button" data-action="{a}" data-task="{escape(task_id)}" disabled>{a}</button>'
                   for a in (("resume" if state == "paused" else "pause"), "cancel"))


_TOKEN_FORM = (
    '<form id="token-form" autocomplete="off"><fieldset class="needs-js" disabled><legend>Token</legend>'
    '<input type="password" name="token" placeholder="the token reverie web printed" size="36" '
    'aria-label="token"> <button type="submit">use</button> <button type="button" id="token-forget">forget'
    '</button> <span class="muted" id="token-state"></span></fieldset></form>'
    '<noscript><p class="muted">actions need JavaScript</p></noscript>'
    '<p class="out" id="action-out" aria-live="polite"></p>')
"""Keeps the token in this tab's sessionStorage; the script sends it as `Authorization: Bearer`."""


def _submit_form(kinds: list[str]) -> str:
    first = "plan" if "plan" in kinds or not kinds else kinds[0]
    options = "".join(f'<option value="{escape(k)}">' for k in kinds)
    return ('<form id="submit-form" autocomplete="off"><fieldset class="needs-js" disabled><legend>Submit a task'
            f'</legend><label>kind <input name="kind" list="kinds" value="{escape(first)}" required size="14">'
            f'</label><datalist id="kinds">{options}</datalist> <label>id <input name="id" size="20" '
            'placeholder="optional"></label><br><label for="task-input">input (JSON)</label>'
            '<textarea id="task-input" name="input" rows="6" required placeholder="{&quot;steps&quot;: ...}">'
            '</textarea><br><button type="submit">submit</button></fieldset></form>')


def _ago(at: float, now: float) -> str:
    secs = max(0.0, now - at)
    if secs < 120:
        return f"{secs:.0f} s ago"
    if secs < 7200:
        return f"{secs / 60:.0f} min ago"
    return f"{secs / 3600:.1f} h ago"


def _task_href(task_id: str) -> str:
    return "/task/" + quote(task_id, safe="")


def render_index(swarm: str, agents: Iterable[AgentStatus], rows: Iterable[TaskRow], *,
                 live: Iterable[TaskInfo] = (), now: float | None = None, actions: bool = False,
                 kinds: Iterable[str] = ()) -> str:
    """`/`: the live agents, the tasks in progress (queued, running, paused) and the recent
    tasks (newest first). With `actions`: the token field, a submit form (`kinds` suggested) and
    pause/resume/cancel buttons on the tasks in progress."""
    now = time.time() if now is None else now
    agent_rows = "".join(
        f"<tr class=\"agent\"><td>{escape(a.agent)}</td><td>{a.replica}</td><td>{escape(a.role)}</td>"
        f"<td>{escape(a.state.value)}</td><td>{escape(_where(a))}</td><td>{a.in_flight}</td>"
        f"<td>{escape(', '.join(f'{k} {v}' for k, v in sorted(a.counters.items()) if not k.startswith('seconds.')))}"
        "</td>"
        f"<td class=\"muted\">{_ago(a.started_at, now)}</td></tr>\n" for a in agents)
    task_rows = "".join(
        f"<tr class=\"task\"><td><a href=\"{escape(_task_href(r.task_id))}\">{escape(r.task_id)}</a></td>"
        f"<td>{escape(r.kind)}</td><td class=\"status-{escape(r.status)}\">{escape(r.status)}</td>"
        f"<td>{r.rounds}</td><td>{r.candidates}</td><td>{r.rejected}</td><td>{r.flagged}</td>"
        f"<td>{r.elapsed * 1000:.0f} ms</td><td class=\"muted\">{_ago(r.finished_at, now)}</td></tr>\n"
        for r in rows)
    live_rows = "".join(
        f"<tr class=\"live state-{escape(t.state.value)}\"><td><a href=\"{escape(_task_href(t.task_id))}\">"
        f"{escape(t.task_id)}</a></td><td>{escape(t.state.value)}</td>"
        f"<td>{t.rounds}</td><td>{t.candidates}</td><td>{t.rejected}</td><td>{t.spent:.1f} s</td>"
        f"<td>{escape(t.agent)}</td>"
        + (f"<td class=\"acts\">{_buttons(t.task_id, t.state.value)}</td>" if actions else "") + "</tr>\n"
        for t in live)
    mode = "actions on (with the token)" if actions else "read-only view"
    body = (f"<h1>reverie swarm <code>{escape(swarm)}</code></h1>"
            f"<p class=\"muted\">{mode}; updates every {POLL_SECONDS} s <span id=\"updated\"></span></p>"
            + (_TOKEN_FORM + _submit_form(sorted(set(kinds))) if actions else "")
            + "<h2>Agents</h2><div id=\"agents-box\">"
            + (f"<table id=\"agents\"><tr><th>agent</th><th>replica</th><th>role</th><th>state</th>"
               f"<th>where</th><th>in flight</th><th>counters</th><th>started</th></tr>\n{agent_rows}</table>"
               if agent_rows else "<p class=\"muted\">no agent answered</p>")
            + "</div><h2>In progress</h2><div id=\"live-box\">"
            + (f"<table id=\"live\"><tr><th>task</th><th>state</th><th>rounds</th><th>candidates</th>"
               f"<th>rejected</th><th>dreaming</th><th>dreamer</th>{'<th></th>' if actions else ''}</tr>\n"
               f"{live_rows}</table>" if live_rows else "<p class=\"muted\">nothing queued or dreaming</p>")
            + "</div><h2>Recent tasks</h2><div id=\"tasks-box\">"
            + (f"<table id=\"tasks\"><tr><th>task</th><th>kind</th><th>status</th><th>rounds</th>"
               f"<th>candidates</th><th>rejected</th><th>flagged</th><th>elapsed</th><th>finished</th></tr>\n"
               f"{task_rows}</table>" if task_rows else "<p class=\"muted\">no stored results yet</p>")
            + "</div>")
    return _page(f"reverie: {swarm}", body, refresh=True, data=_settings("index", actions))


def _diff(text: str) -> str:
    """A unified diff in a `<pre>`, its added, removed and hunk lines marked."""
    lines = []
    for line in text.splitlines():
        cls = ("add" if line.startswith("+") and not line.startswith("+++") else
               "del" if line.startswith("-") and not line.startswith("---") else
               "hunk" if line.startswith("@@") else "")
        lines.append(f'<span class="{cls}">{escape(line)}</span>' if cls else escape(line))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


def _verdict(v: Verdict) -> str:
    reasons = "".join(
        f"<div class=\"reason\"><code>{escape(r.code)}</code> {escape(r.text)}"
        + (f" <span class=\"muted\">({escape(', '.join(r.where))})</span>" if r.where else "")
        + "</div>" for r in v.reasons)
    return (f"<li class=\"verdict\"><b>{escape(v.critic)}</b>: "
            f"<span class=\"decision-{escape(v.decision.value)}\">{escape(v.decision.value)}</span>"
            f" <span class=\"muted\">score {v.score:.2f}</span>{reasons}</li>")


def _missing(judged: JudgedCandidate) -> str:
    why: dict[str, MissingVerdict] = {m.critic: m for m in judged.why_missing}
    items = [(f"<li class=\"missing\"><b>{escape(c)}</b> gave no verdict: <code>{escape(why[c].code)}</code> "
              f"{escape(why[c].message)}</li>") if c in why else
             f"<li class=\"missing\"><b>{escape(c)}</b> gave no verdict</li>" for c in judged.missing]
    items += [f"<li class=\"missing\"><b>{escape(m.critic)}</b> gave no verdict: <code>{escape(m.code)}</code> "
              f"{escape(m.message)}</li>" for m in judged.why_missing if m.critic not in judged.missing]
    return f"<ul class=\"missing\">{''.join(items)}</ul>" if items else ""


def _candidate(judged: JudgedCandidate, chosen: bool) -> str:
    cand = judged.candidate
    artifact = artifact_of(cand)
    classes = "candidate " + _OUTCOME_CLASS[judged.outcome] + (" chosen" if chosen else "")
    if isinstance(artifact, Patch):
        what = _diff(cand.text) if cand.text else "<p class=\"muted\">(no diff)</p>"
    elif isinstance(artifact, Text):
        what = f"<pre class=\"text\">{escape(artifact.text)}</pre>"
    else:
        what = f"<p class=\"path\"><code>{escape(cand.text or ' -> '.join(artifact.steps))}</code></p>"
    rationale = f"<p class=\"muted rationale\">{escape(cand.rationale)}</p>" if cand.rationale else ""
    mark = " <b>&#9733; the answer</b>" if chosen else ""
    return (f"<div class=\"{classes}\" id=\"cand-{escape(cand.id)}\"><div class=\"head\">"
            f"<span class=\"badge\">{_OUTCOME_LABEL[judged.outcome]}</span> candidate #{cand.index}{mark}"
            f" <span class=\"muted\">{escape(cand.id)}"
            + (f" by {escape(cand.dreamer)}" if cand.dreamer else "") + "</span></div>"
            f"{rationale}{what}<ul class=\"verdicts\">{''.join(_verdict(v) for v in judged.verdicts)}</ul>"
            f"{_missing(judged)}</div>\n")


def _answer(result: Result) -> str:
    answer: Any = result.answer
    if answer is None:
        return "<p class=\"muted\">no answer</p>"
    if isinstance(answer, dict) and isinstance(answer.get("patch"), str):
        files = ", ".join(sorted(str(f) for f in answer.get("files") or {}))
        return _diff(answer["patch"]) + (f"<p class=\"muted\">files: {escape(files)}</p>" if files else "")
    if isinstance(answer, dict) and isinstance(answer.get("steps"), list):  # a plan: its path, then the rest
        rest = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in answer.items() if k != "steps" and isinstance(v, int | float | str))
        return (f"<p class=\"path answer\"><code>{escape(' -> '.join(str(s) for s in answer['steps']))}</code></p>"
                + (f"<p class=\"muted\">{escape(rest)}</p>" if rest else ""))
    text = msgspec.json.format(msgspec.json.encode(answer), indent=2).decode()
    return f"<pre class=\"answer\">{escape(text)}</pre>"


def render_task(result: Result) -> str:
    """`/task/<id>`: the dream tree (rounds, candidates, verdicts and their reasons) and the answer."""
    accepted_id = result.accepted.candidate.id if result.accepted is not None else None
    rounds, shown = [], set()
    for rnd in result.trace:
        cands = ""
        for judged in rnd.candidates:
            chosen = judged.candidate.id == accepted_id and judged.outcome is Decision.ACCEPT
            shown.add(judged.candidate.id)
            cands += _candidate(judged, chosen)
        rounds.append(f"<section class=\"round\"><h3>round {rnd.round} "
                      f"<span class=\"muted\">{len(rnd.candidates)} candidate(s), {rnd.elapsed * 1000:.0f} ms"
                      f"</span></h3>\n{cands}</section>\n")
    if result.accepted is not None and accepted_id not in shown:  # not in the stored trace: show it alone
        rounds.append(f"<section class=\"round\"><h3>accepted</h3>{_candidate(result.accepted, True)}</section>")
    kind = task_kind(result)
    reason = f"<p>why: {escape(result.reason)}</p>" if result.reason else ""
    body = (f"<p><a href=\"/\">&larr; swarm</a></p><h1>task <code>{escape(result.task_id)}</code></h1>"
            f"<p><span class=\"status-{escape(result.status.value)}\">{escape(result.status.value)}</span>"
            f"{' &middot; ' + escape(kind) if kind else ''} &middot; {result.rounds} round(s) &middot; "
            f"{sum(len(r.candidates) for r in result.trace)} candidate(s) &middot; "
            f"{result.elapsed * 1000:.0f} ms &middot; by {escape(result.agent)}"
            + (f" &middot; resumed {result.resumes}x" if result.resumes else "") + f"</p>{reason}"
            f"<h2>Answer</h2>{_answer(result)}<h2>Dream tree</h2>\n{''.join(rounds) or '<p>no rounds</p>'}")
    return _page(f"reverie: task {result.task_id}", body)


def render_waiting(info: TaskInfo, *, actions: bool = False) -> str:
    """`/task/<id>` of a task with no result yet (queued, running or paused): what the swarm knows
    of it; the script polls for its result and reloads the page once it is stored."""
    acts = _buttons(info.task_id, info.state.value) if actions else ""
    body = (f"<p><a href=\"/\">&larr; swarm</a></p><h1>task <code>{escape(info.task_id)}</code></h1>"
            + (_TOKEN_FORM if actions else "")
            + f"<p id=\"state\"><b>{escape(info.state.value)}</b> after {info.rounds} round(s), "
            f"{info.candidates} candidate(s), {info.spent:.1f} s dreaming"
            + (f" (dreamer {escape(info.agent)})" if info.agent else "") + "</p>"
            f"<p class=\"acts\" id=\"task-acts\"><span>{acts}</span></p>"
            f"<p class=\"muted waiting\">waiting for the result: this page shows its dream tree once it is "
            f"stored <span id=\"updated\"></span></p>")
    return _page(f"reverie: task {info.task_id}", body,
                 data=_settings("waiting", actions, **{"wait-for": info.task_id}))


def render_not_found(task_id: str, *, wait: bool = False) -> str:
    """The 404 page: no stored result for `task_id` (or no page at that path). With `wait` (a
    well-formed task id) the script keeps looking for its result and shows it once stored."""
    body = (f"<p><a href=\"/\">&larr; swarm</a></p><h1>No such task</h1>"
            f"<p>No stored result for <code>{escape(task_id)}</code> (it may be unknown, still running, "
            f"or expired from the results stream).</p>"
            + ("<p class=\"muted waiting\">waiting for the result: this page shows it if it is stored "
               "<span id=\"updated\"></span></p>" if wait else ""))
    return _page("reverie: no such task", body, data=_settings("missing", False, **{"wait-for": task_id})
                 if wait else None)


def _where(a: AgentStatus) -> str:
    """The host an agent runs on and the NATS server it is connected to."""
    return " / ".join(p for p in (a.host, a.node) if p)
