"""The web view's one inline script (no external asset): it updates the index page's tables in
place, makes a task page that waits for its result show it once stored, and, with actions on,
sends the submit form and the pause/resume/cancel buttons with the bearer token kept in
`sessionStorage`. It builds every element with `textContent` and DOM calls, never from HTML
strings. The page's settings come from the `data-*` attributes of its `<body>`."""

from __future__ import annotations

__all__ = ["POLL_SECONDS", "SCRIPT", "TOKEN_KEY"]

POLL_SECONDS = 2
"""How often a page asks the server for what changed."""

TOKEN_KEY = "reverie-web-token"
"""The `sessionStorage` key of the token (one browser tab's, gone when it closes)."""

SCRIPT = """
"use strict";
(() => {
  const ds = document.body.dataset;
  const POLL_MS = (Number(ds.poll) || 2) * 1000;
  const ACTIONS = ds.actions === "1";
  const KEY = "%(key)s";
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else node.setAttribute(k, String(v));
    }
    node.append(...children);  // strings become text nodes, never markup
    return node;
  }
  const cell = (text, cls) => el("td", cls ? {class: cls, text: text} : {text: text});
  const taskHref = (id) => "/task/" + encodeURIComponent(id);

  function ago(at) {
    const secs = Math.max(0, Date.now() / 1000 - at);
    if (secs < 120) return secs.toFixed(0) + " s ago";
    if (secs < 7200) return (secs / 60).toFixed(0) + " min ago";
    return (secs / 3600).toFixed(1) + " h ago";
  }

  // ---------------------------------------------------------------- the token and the actions
  function token() {
    try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }
  function showToken() {
    const state = $("token-state");
    if (state) state.textContent = token() ? "token set for this tab" : "no token yet";
  }
  function setToken(value) {
    try {
      if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY);
    } catch (e) { say(["cannot keep the token: " + e.message], true); }
    showToken();
  }
  function say(parts, bad) {
    const out = $("action-out");
    if (!out) return;
    out.className = bad ? "out bad" : "out good";
    out.replaceChildren(...parts);
  }
  async function post(path, body) {
    const init = {method: "POST", cache: "no-store", headers: {"Authorization": "Bearer " + token()}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try { resp = await fetch(path, init); } catch (e) {
      return {ok: false, status: 0, body: {message: "no answer: " + e.message}};
    }
    let data = {};
    try { data = await resp.json(); } catch (e) { data = {}; }
    return {ok: resp.ok, status: resp.status, body: data};
  }
  function problem(r) {
    if (r.status === 401) return "the token is missing or wrong: enter the one `reverie web` printed";
    return (r.body && (r.body.message || r.body.error)) || ("HTTP " + r.status);
  }
  async function act(action, id) {
    say([action + " " + id + " ..."]);
    const r = await post("/api/task/" + encodeURIComponent(id) + "/" + action);
    if (r.ok) say([id + ": " + (r.body.message || action)]); else say([id + ": " + problem(r)], true);
    refresh();
  }
  function buttons(id, state) {
    const names = state === "paused" ? ["resume", "cancel"] : ["pause", "cancel"];
    return names.map((a) => el("button", {type: "button", "data-action": a, "data-task": id, text: a}));
  }
  document.addEventListener("click", (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest("button[data-action]") : null;
    if (!b || !ACTIONS) return;
    ev.preventDefault();
    act(b.dataset.action, b.dataset.task);
  });
  const tokenForm = $("token-form");
  if (tokenForm) {
    tokenForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      setToken(tokenForm.elements.token.value.trim());
      tokenForm.elements.token.value = "";
    });
    $("token-forget").addEventListener("click", () => setToken(""));
  }
  const form = $("submit-form");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const kind = form.elements.kind.value.trim(), id = form.elements.id.value.trim();
      let input;
      try { input = JSON.parse(form.elements.input.value); } catch (e) {
        say(["the input is not JSON: " + e.message], true);
        return;
      }
      const body = {kind: kind, input: input};
      if (id) body.id = id;
      const r = await post("/api/submit", body);
      if (!r.ok) { say([problem(r)], true); return; }
      const tid = String(r.body.task_id);
      say(["queued ", el("a", {href: taskHref(tid), text: tid}), r.body.message ? ": " + r.body.message : ""]);
      refresh();
    });
  }
  if (ACTIONS) {
    for (const node of document.querySelectorAll("fieldset.needs-js, button[data-action]")) node.disabled = false;
    showToken();
  }

  // ---------------------------------------------------------------- the index's tables, in place
  function table(id, heads, rows, empty) {
    if (!rows.length) return el("p", {class: "muted", text: empty});
    const t = el("table", {id: id}, el("tr", {}, ...heads.map((h) => el("th", {text: h}))));
    t.append(...rows);
    return t;
  }
  function agentRow(a) {
    const counters = Object.keys(a.counters || {}).filter((k) => !k.startsWith("seconds.")).sort()
      .map((k) => k + " " + a.counters[k]).join(", ");
    const where = [a.host, a.node].filter((p) => p).join(" / ");
    return el("tr", {class: "agent"}, cell(a.agent), cell(a.replica), cell(a.role), cell(a.state),
              cell(where), cell(a.in_flight), cell(counters), cell(ago(a.started_at), "muted"));
  }
  function liveRow(t) {
    const row = el("tr", {class: "live state-" + t.state}, el("td", {}, el("a", {href: taskHref(t.task_id),
                   text: t.task_id})), cell(t.state), cell(t.rounds), cell(t.candidates), cell(t.rejected),
                   cell(Number(t.spent).toFixed(1) + " s"), cell(t.agent));
    if (ACTIONS) row.append(el("td", {class: "acts"}, ...buttons(t.task_id, t.state)));
    return row;
  }
  function taskRow(r) {
    return el("tr", {class: "task"}, el("td", {}, el("a", {href: taskHref(r.task_id), text: r.task_id})),
              cell(r.kind), cell(r.status, "status-" + r.status), cell(r.rounds), cell(r.candidates),
              cell(r.rejected), cell(r.flagged), cell((r.elapsed * 1000).toFixed(0) + " ms"),
              cell(ago(r.finished_at), "muted"));
  }
  function put(boxId, node) {
    const box = $(boxId);
    if (box && !(box.firstElementChild && box.firstElementChild.isEqualNode(node))) box.replaceChildren(node);
  }
  async function getJSON(path) {
    const resp = await fetch(path, {cache: "no-store", headers: {"Accept": "application/json"}});
    if (!resp.ok) throw new Error(path + ": HTTP " + resp.status);
    return resp.json();
  }
  function updated(text) {
    const note = $("updated");
    if (note) note.textContent = text;
  }
  async function updateIndex() {
    const [agents, live, tasks] = await Promise.all([getJSON("/api/agents"), getJSON("/api/live"),
                                                     getJSON("/api/tasks")]);
    const agentHeads = ["agent", "replica", "role", "state", "where", "in flight", "counters", "started"];
    put("agents-box", table("agents", agentHeads, agents.map(agentRow), "no agent answered"));
    const liveHeads = ["task", "state", "rounds", "candidates", "rejected", "dreaming", "dreamer"];
    put("live-box", table("live", ACTIONS ? liveHeads.concat([""]) : liveHeads, live.map(liveRow),
                          "nothing queued or dreaming"));
    put("tasks-box", table("tasks", ["task", "kind", "status", "rounds", "candidates", "rejected", "flagged",
                                     "elapsed", "finished"], tasks.map(taskRow), "no stored results yet"));
  }

  // ---------------------------------------------------------------- a task page waiting for its result
  async function updateWaiting(id) {
    const info = await getJSON("/api/task/" + encodeURIComponent(id) + "/state");
    if (info.state === "done" || (ds.page === "missing" && info.state !== "unknown")) {
      location.reload();  // stored (or now known): the server renders it
      return true;
    }
    const state = $("state");
    if (state && info.state !== "unknown") {
      state.replaceChildren(el("b", {text: info.state}), " after " + info.rounds + " round(s), " + info.candidates +
                            " candidate(s), " + Number(info.spent).toFixed(1) + " s dreaming" +
                            (info.agent ? " (dreamer " + info.agent + ")" : ""));
      put("task-acts", el("span", {}, ...(ACTIONS ? buttons(id, info.state) : [])));
    }
    return false;
  }

  let busy = false, again = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      if (ds.page === "index") await updateIndex();
      else if (ds.waitFor && await updateWaiting(ds.waitFor)) return;
      updated("(updated " + new Date().toLocaleTimeString() + ")");
    } catch (e) {
      updated("(could not update: " + e.message + "; trying again)");
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  async function loop() {
    if (!document.hidden) await refresh();
    setTimeout(loop, POLL_MS);
  }
  if (ds.page === "index" || ds.waitFor) setTimeout(loop, POLL_MS);
})();
""".replace("%(key)s", TOKEN_KEY)
