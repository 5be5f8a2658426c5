"""`reverie web`: the web view (read-only, and with actions behind a token), against in-process
agents on a real nats-server, checked over HTTP (JSON and HTML) against the real uvicorn server and
in a real headless browser (Debian's chromium, driven by Playwright).

A missing chromium fails the browser test (install it: `apt-get install chromium`); nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest

from reverie.protocol import (
    Budget,
    Candidate,
    Decision,
    JudgedCandidate,
    MissingVerdict,
    Reason,
    Result,
    ResultStatus,
    RoundTrace,
    Task,
    TaskState,
    Verdict,
    new_id,
)
from reverie.runtime import connect
from reverie.runtime.web import WebServer, create_app, recent_results
from reverie.runtime.web.script import SCRIPT

from .conftest import LOCAL_AGENTS, ROOT, agents_running, eventually, load_task, make_config

MEDIAN = json.loads((ROOT / "deploy" / "tasks" / "code" / "median.json").read_text())
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
EXTERNAL = re.compile(r'(src|href)="(https?:)?//|<link|<script[^>]*\bsrc|@import|url\(')
"""What would load another resource (a script, a stylesheet, a font, an image from elsewhere)."""
OUR_SCRIPT = f"<script>{SCRIPT}</script>"
"""The pages' one inline script (the pages' only `<script>`)."""

AGENTS = LOCAL_AGENTS + """
[[agents]]
name = "sandbox"
kind = "sandbox-critic"
[agents.options.limits]
timeout = 30
"""


class _Classes(HTMLParser):
    """The class lists of every element of a page, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: list[set[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.classes.append(set((dict(attrs).get("class") or "").split()))


def elements(page: str, cls: str) -> list[set[str]]:
    parser = _Classes()
    parser.feed(page)
    return [c for c in parser.classes if cls in c]


async def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET."""
    status, headers, body = await request("GET", url)
    return status, headers.get("content-type", ""), body


async def request(method: str, url: str, data: bytes | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """(status, headers (lower-case names), body) of a request."""
    def fetch() -> tuple[int, dict[str, str], str]:
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()
    return await asyncio.to_thread(fetch)


async def post(url: str, body: Any = None, *, token: str | None = None,
               auth: str | None = None) -> tuple[int, Any]:
    """(status, decoded JSON answer) of a POST of `body` as JSON (bytes as they are), with `token`
    as the bearer token (or `auth` as the whole Authorization header)."""
    headers = {"Content-Type": "application/json"}
    if token is not None or auth is not None:
        headers["Authorization"] = auth if auth is not None else f"Bearer {token}"
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    status, got, text = await request("POST", url, data if data is not None else b"", headers)
    assert got.get("content-type") == "application/json", (status, got, text)
    return status, json.loads(text)


async def post_unsent(url: str, size: int, token: str) -> tuple[int, Any]:
    """(status, decoded JSON answer) of a POST that announces a `size`-byte body and, as
    `Expect: 100-continue` allows, waits for the answer before sending any of it."""
    def run() -> tuple[int, Any]:
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            conn.putrequest("POST", parts.path)
            for name, value in {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                "Content-Length": str(size), "Expect": "100-continue"}.items():
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()
    return await asyncio.to_thread(run)


@contextlib.asynccontextmanager
async def serving(swarm: Any, **options: Any) -> AsyncIterator[str]:
    """The app (`create_app(swarm, **options)`) on a free loopback port in this event loop; yields its URL."""
    server = WebServer(create_app(swarm, status_window=0.3, **options), host="127.0.0.1", port=0)
    serve = asyncio.create_task(server.serve())

    async def listening() -> bool:
        if serve.done():
            serve.result()  # it failed: say why
        return server.listening.is_set()

    try:
        await eventually(listening, what="the web server listening")
        assert server.url.startswith("http://127.0.0.1:")
        yield server.url
    finally:
        server.stop()
        await serve


def crafted_result(task_id: str = "evil-task") -> Result:
    """A stored result whose texts hold markup, with a flagged candidate and a missing critic."""
    task = Task(id=task_id, kind="plan", input={})
    cand = Candidate(id="c-evil", task=task, round=1, index=0, steps=("a", "b"), text="a -> <b>",
                     rationale="<img src=x onerror=alert(1)>", dreamer="dreamer")
    verdict = Verdict(candidate_id=cand.id, critic="rules", decision=Decision.FLAG,
                      reasons=(Reason(code="harmful", text="<script>alert('pwned')</script>"),))
    judged = JudgedCandidate(candidate=cand, verdicts=(verdict,), outcome=Decision.FLAG, missing=("budget",),
                             why_missing=(MissingVerdict(critic="budget", code="no_answer", message="no reply"),))
    return Result(task_id=task_id, status=ResultStatus.EXHAUSTED, agent="dreamer", rounds=1,
                  trace=(RoundTrace(round=1, candidates=(judged,), elapsed=0.01),), reason="budget spent")


def candidates_of(result: Result) -> int:
    return sum(len(r.candidates) for r in result.trace)


async def test_recent_results_newest_first_across_gaps(nats_url: str, tmp_path: Path) -> None:
    config = make_config(nats_url, tmp_path / "data")
    async with connect(config, servers=[nats_url]) as swarm:
        assert await recent_results(swarm.bus) == []
        for i in range(6):
            await swarm.bus.store_result(crafted_result(f"t{i}"))
        await swarm.bus.js.publish(swarm.bus.subjects.result("junk"), b"\xc1 not msgpack")
        await swarm.bus.js.publish(swarm.bus.subjects.result("t1"), msgspec.msgpack.encode(crafted_result("t1")))
        # t1 stored again (its first message deleted: a gap), so it is now the newest; junk is left out
        newest = [r.task_id for _, r in await recent_results(swarm.bus, 3)]
        assert newest == ["t1", "t5", "t4"]
        everything = await recent_results(swarm.bus)
        assert [r.task_id for _, r in everything] == ["t1", "t5", "t4", "t3", "t2", "t0"]
        seqs = [seq for seq, _ in everything]
        assert seqs == sorted(seqs, reverse=True) and 2 not in seqs  # seq 2 was t1's first result
        assert await recent_results(swarm.bus, 0) == []


async def test_web_view_of_a_plan_and_a_code_task(nats_url: str, tmp_path: Path) -> None:
    config = make_config(nats_url, tmp_path / "data", agents=AGENTS)
    async with agents_running(config, nats_url), connect(config, servers=[nats_url]) as swarm:
        plan, code = await asyncio.gather(
            swarm.submit(load_task("db-migration"), task_id="plan-db", timeout=60),
            swarm.submit(MEDIAN, kind="code", task_id="code-median", timeout=120,
                         budget=Budget(max_rounds=8, max_seconds=120, candidates_per_round=4)))
        assert plan.status is ResultStatus.ACCEPTED and plan.rounds == 2, plan.reason
        assert code.status is ResultStatus.ACCEPTED, code.reason
        await swarm.bus.store_result(crafted_result())
        await swarm.publish(Task(id="waiting", kind="plan-later", input={}))  # no agent serves it: stays queued

        async with serving(swarm) as url:
            status, _, body = await get(url + "api/live")
            assert status == 200 and [(t["task_id"], t["state"]) for t in json.loads(body)] == [("waiting", "queued")]
            status, ctype, body = await get(url + "api/tasks")
            assert status == 200 and ctype == "application/json"
            rows = json.loads(body)
            assert rows[0]["task_id"] == "evil-task"  # newest first
            by_id = {r["task_id"]: r for r in rows}
            assert by_id["plan-db"]["kind"] == "plan" and by_id["plan-db"]["rounds"] == 2
            assert by_id["plan-db"]["candidates"] == candidates_of(plan) and by_id["plan-db"]["rejected"] > 0
            assert by_id["code-median"]["kind"] == "code" and by_id["code-median"]["status"] == "accepted"
            assert by_id["evil-task"]["flagged"] == 1

            status, _, body = await get(url + "api/agents")
            assert status == 200
            assert {a["agent"] for a in json.loads(body)} == {"dreamer", "rules", "planner", "budget", "sandbox"}

            status, _, body = await get(url + "api/task/plan-db")
            assert status == 200 and msgspec.json.decode(body, type=Result) == plan
            for missing in ("api/task/nope", "api/task/not.a.task", "api/nowhere"):
                status, ctype, body = await get(url + missing)
                assert status == 404 and ctype == "application/json" and json.loads(body)["error"] == "not_found"

            status, ctype, index = await get(url)
            assert status == 200 and ctype.startswith("text/html")
            assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in index  # without JavaScript
            assert '<table id="live">' in index
            assert '<tr class="live state-queued"><td><a href="/task/waiting">waiting</a></td>' in index
            markup = index.replace(OUR_SCRIPT, "")
            assert 'id="submit-form"' not in markup and "data-action=" not in markup  # read-only: no controls
            assert len(elements(index, "agent")) == 5 and len(elements(index, "task")) == 3
            assert 'href="/task/plan-db"' in index and 'href="/task/code-median"' in index
            assert not EXTERNAL.search(index)

            status, _, page = await get(url + "task/plan-db")
            assert status == 200
            cands = elements(page, "candidate")
            assert len(cands) == candidates_of(plan)
            assert sum("accepted" in c for c in cands) >= 1 and sum("rejected" in c for c in cands) >= 1
            assert sum("chosen" in c for c in cands) == 1
            assert "operation &#x27;drop_old_tables&#x27; is forbidden" in page  # a critic's reason
            assert f"<code>{' -&gt; '.join(plan.answer['steps'])}</code>" in page  # the answer

            assert not EXTERNAL.search(page)

            status, _, page = await get(url + "task/code-median")
            assert status == 200 and len(elements(page, "candidate")) == candidates_of(code)
            assert '<pre class="diff">' in page and "--- a/stats.py" in page and "+++ b/stats.py" in page
            assert '<span class="add">+    if n % 2 == 1:</span>' in page

            status, _, page = await get(url + "task/evil-task")
            assert status == 200 and len(elements(page, "flagged")) == 1
            assert "<script>" not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
            assert "<img" not in page and "a -&gt; &lt;b&gt;" in page
            assert "budget</b> gave no verdict: <code>no_answer</code> no reply" in page

            for missing in ("task/nope", "task/not.a.task", "task/%3Cscript%3E", "task/a%2F%3Cscript%3E", "nowhere"):
                status, ctype, page = await get(url + missing)
                assert status == 404 and ctype.startswith("text/html") and "No such task" in page
                assert "<script>" not in page.replace(OUR_SCRIPT, "")
                assert ("waiting for the result" in page) is (missing == "task/nope")  # a task id: it may come

            status, _, page = await get(url + "task/waiting")  # queued: its page waits for the result
            assert status == 200 and "waiting for the result" in page and "<b>queued</b>" in page
            assert 'data-wait-for="waiting"' in page and "data-action=" not in page.replace(OUR_SCRIPT, "")


async def test_task_page_in_a_headless_browser(swarm: Any) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: `apt-get install -y chromium` (Debian's, driven by Playwright)"
    from playwright.async_api import async_playwright

    result = await swarm.submit(load_task("db-migration"), task_id="db-migration", timeout=60)
    assert result.status is ResultStatus.ACCEPTED and result.rounds == 2
    async with serving(swarm) as url, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium)
        try:
            page = await browser.new_page(viewport={"width": 1000, "height": 900})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(url)
            await page.get_by_role("link", name="db-migration").click()
            await page.wait_for_url("**/task/db-migration")
            assert await page.locator(".candidate").count() == candidates_of(result)
            assert await page.locator(".candidate.accepted.chosen").count() == 1
            assert await page.locator(".candidate.rejected").count() >= 1
            assert await page.locator(".round").count() == 2
            assert requested and all(u.startswith(url) for u in requested), requested  # nothing from elsewhere
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "web-task.png"), full_page=True)
        finally:
            await browser.close()
    shot = ARTIFACTS / "web-task.png"
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size < 400_000
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one


async def test_the_command_serves_until_sigterm(nats_url: str, tmp_path: Path) -> None:
    path = tmp_path / "swarm.toml"
    path.write_text(f'swarm = "test"\ndata_dir = "data"\n[nats]\nurl = "{nats_url}"\n{LOCAL_AGENTS}')
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "reverie.runtime.cli", "web", str(path),
                                                "--port", "0", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("reverie web: http://127.0.0.1:") and line.endswith("/\n"), line
        status, _, page = await get(line.split(": ", 1)[1].strip())
        assert status == 200 and "no stored results yet" in page
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# ---------------------------------------------------------------------------- actions (--allow-actions)

CRITICS_ONLY = ["rules", "planner", "budget"]
"""The local swarm without its dreamer: a task stays queued until a dreamer starts."""


async def stored(swarm: Any, task_id: str, timeout: float = 60) -> Result:  # noqa: ASYNC109 - a deadline
    async def check() -> Result | None:
        return await swarm.bus.get_result(task_id)
    return await eventually(check, timeout=timeout, what=f"the result of {task_id}")


@pytest.mark.timeout(300)
async def test_actions_over_http(nats_url: str, tmp_path: Path) -> None:
    config = make_config(nats_url, tmp_path / "data")
    plan = load_task("dns-cutover")
    async with agents_running(config, nats_url, CRITICS_ONLY), connect(config, servers=[nats_url]) as swarm:
        async with serving(swarm) as url:  # read-only: every action is refused, whatever the token
            for path in ("api/submit", "api/task/anything/pause", "api/task/anything/resume",
                         "api/task/anything/cancel"):
                status, body = await post(url + path, {"kind": "plan", "input": plan}, token="whatever")
                assert status == 403 and body["error"] == "actions_disabled", body
            status, headers, text = await request("GET", url + "api/submit")
            assert status == 405 and json.loads(text)["error"] == "method_not_allowed" and headers["allow"] == "POST"
            assert await swarm.bus.get_result("anything") is None and await swarm.tasks(TaskState.QUEUED) == []

        token = "tok-" + new_id()
        async with serving(swarm, actions_token=token) as url:
            submit = url + "api/submit"
            ours = {"kind": "plan", "input": plan, "id": "web-plan"}
            for auth in (None, "Bearer", "Bearer ", f"Bearer {token}x", f"Basic {token}", f"bearer{token}", token):
                status, body = await post(submit, ours, auth=auth)
                assert status == 401 and body["error"] == "unauthorized", (auth, body)
            status, headers, _ = await request("POST", submit, b"{}")
            assert status == 401 and headers["www-authenticate"].startswith("Bearer")

            limit = config.max_message_bytes
            bad: list[tuple[Any, int, str, str]] = [
                (b"{not json", 400, "bad_request", "not JSON"),
                ({"input": plan}, 400, "bad_request", "kind"),
                ({"kind": 3, "input": plan}, 400, "bad_request", "$.kind"),
                ({"kind": "plan"}, 400, "bad_request", "input"),
                ({"kind": "plan", "input": plan, "extra": 1}, 400, "bad_request", "extra"),
                ({"kind": "plan", "input": plan, "id": "a.b"}, 400, "invalid_task_id", "invalid task id 'a.b'"),
                ({"kind": "a.b", "input": plan, "queue_anyway": True}, 400, "invalid_kind", "task kind 'a.b'"),
                ({"kind": "plan-later", "input": {}}, 422, "unserved_kind", "kind 'plan-later'"),
                ({"kind": "plan", "input": "x" * limit}, 413, "too_large", "over this swarm's limit"),
            ]
            for body_sent, code, error, said in bad:
                status, body = await post(submit, body_sent, token=token)
                assert (status, body["error"]) == (code, error) and said in body["message"], (body_sent, body)
            status, body = await post_unsent(submit, 3 * limit, token)  # refused before its body is read
            assert status == 413 and body["error"] == "too_large" and "request body" in body["message"], body
            assert await swarm.tasks(TaskState.QUEUED) == []  # none of them was queued

            status, body = await post(submit, ours, token=token)
            assert status == 202 and body["task_id"] == "web-plan" and body["queued"] is True, body
            status, body = await post(submit, ours, token=token)  # the same id again: JetStream drops it
            assert status == 202 and body["queued"] is False, body
            status, body = await post(submit, {"kind": "plan", "input": plan}, token=token)  # a new id
            assert status == 202 and body["task_id"] and body["task_id"] != "web-plan", body
            made = body["task_id"]
            status, body = await post(submit, {"kind": "plan", "input": plan, "id": "web-cancel"}, token=token)
            assert status == 202, body

            status, body = await post(url + "api/task/web-cancel/cancel", token=token)  # queued: no dreamer yet
            assert status == 202 and body["state"] == "queued" and "when a dreamer takes it" in body["message"]
            for action in ("pause", "resume", "cancel"):
                status, body = await post(url + f"api/task/nobody-here/{action}", token=token)
                assert status == 404 and body["error"] == "unknown_task" and "is the id right" in body["message"]
                status, body = await post(url + f"api/task/not.a.task/{action}", token=token)
                assert status == 400 and body["error"] == "invalid_task_id", body
            status, body = await post(url + "api/task/nobody-here/pause")  # the token first, whatever the task
            assert status == 401
            status, _, page = await get(url + "task/web-plan")
            assert status == 200 and "waiting for the result" in page and "<b>queued</b>" in page
            assert 'data-action="pause"' in page and 'data-action="cancel"' in page and 'id="token-form"' in page

            async with agents_running(config, nats_url, ["dreamer"]):  # now the queued tasks are dreamt
                assert (await stored(swarm, "web-plan")).status is ResultStatus.ACCEPTED
                assert (await stored(swarm, made)).status is ResultStatus.ACCEPTED
                cancelled = await stored(swarm, "web-cancel")
                assert cancelled.status is ResultStatus.CANCELLED and cancelled.rounds == 0, cancelled

                for action in ("pause", "resume", "cancel"):  # finished: nothing to do (as `reverie task` says)
                    status, body = await post(url + f"api/task/web-plan/{action}", token=token)
                    assert status == 409 and body["error"] == "finished" and body["status"] == "accepted"
                    assert body["message"] == f"finished (accepted); there is nothing to {action}"
                status, body = await post(submit, ours, token=token)
                assert status == 409 and body["error"] == "finished" and "/task/web-plan" in body["message"]

                # a running task: paused after its round, resumed (queued again), then cancelled
                slow = {"kind": "plan", "input": {**load_task("impossible"), "simulate_latency": 1.0}, "id": "slow"}
                assert (await post(submit, slow, token=token))[0] == 202

                async def state_of(task_id: str, wanted: TaskState) -> bool:
                    return any(t.task_id == task_id and t.state is wanted and (wanted is not TaskState.PAUSED
                                                                               or t.rounds >= 1)
                               for t in await swarm.tasks(wanted, timeout=0.3))

                await eventually(lambda: state_of("slow", TaskState.RUNNING), timeout=60, what="slow running")
                status, body = await post(url + "api/task/slow/pause", token=token)
                assert status == 202 and body["message"] == "pause requested: it pauses after its current round"
                await eventually(lambda: state_of("slow", TaskState.PAUSED), timeout=60, what="slow parked")
                status, body = await post(url + "api/task/slow/resume", token=token)
                assert status == 200 and body["requeued"] is True, body
                assert body["message"] == "queued again; it resumes at its next round"
                status, body = await post(url + "api/task/slow/cancel", token=token)
                assert status == 202 and body["message"].startswith("cancel requested"), body
                ended = await stored(swarm, "slow")
                assert ended.status is ResultStatus.CANCELLED and "cancelled by an operator" in ended.reason
                assert ended.resumes >= 1, ended

            status, headers, page = await request("GET", url)
            csp = headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "frame-ancestors 'none'" in csp
            assert 'id="submit-form"' in page and 'id="token-form"' in page and not EXTERNAL.search(page)
            assert token not in page  # the page never holds the token: the user enters it


def launch_chromium() -> str:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: `apt-get install -y chromium` (Debian's, driven by Playwright)"
    return chromium


@contextlib.asynccontextmanager
async def browser_page(url: str) -> AsyncIterator[tuple[Any, list[str], list[str]]]:
    """A chromium page at `url`, a JS variable set once it loaded (a reload would drop it), the URLs
    its main frame navigated to since, and its console errors (a CSP violation is one; the browser's
    request for a favicon, which 404s, is not counted)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=launch_chromium())
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
                    and not msg.location.get("url", "").endswith("/favicon.ico") else None)  # there is none
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(url)
            await page.evaluate("window.loadedOnce = 'yes'")
            navigated: list[str] = []
            page.on("framenavigated", lambda frame: navigated.append(frame.url) if frame == page.main_frame else None)
            yield page, navigated, errors
        finally:
            await browser.close()


async def not_reloaded(page: Any, navigated: list[str]) -> None:
    assert navigated == [] and await page.evaluate("window.loadedOnce") == "yes", navigated


@pytest.mark.timeout(300)
async def test_the_index_updates_in_place(swarm: Any) -> None:
    from playwright.async_api import expect

    async with serving(swarm) as url, browser_page(url) as (page, navigated, errors):
        assert await page.locator("#submit-form, #token-form, button[data-action]").count() == 0  # read-only
        await expect(page.locator("#agents tr.agent")).to_have_count(4)
        await swarm.publish(Task(id="nobody-serves", kind="plan-later", input={}))  # stays queued
        done = await swarm.submit(load_task("dns-cutover"), task_id="from-client", timeout=60)
        assert done.status is ResultStatus.ACCEPTED
        row = page.locator("#tasks tr.task", has=page.locator('a[href="/task/from-client"]'))
        await expect(row).to_be_visible(timeout=30_000)
        await expect(row.locator("td.status-accepted")).to_have_text("accepted")
        queued = page.locator("#live tr.live.state-queued", has=page.locator('a[href="/task/nobody-serves"]'))
        await expect(queued).to_be_visible(timeout=30_000)
        await expect(page.locator("#updated")).to_contain_text("updated")
        await not_reloaded(page, navigated)
        assert errors == []


@pytest.mark.timeout(300)
async def test_actions_in_a_headless_browser(swarm: Any) -> None:
    from playwright.async_api import expect

    token = "tok-" + new_id()
    held = Task(id="held", kind="plan", input=load_task("db-migration"))  # accepted in round 2
    await swarm.pause(held.id)  # paused before it starts: its dreamer parks it after round 1
    await swarm.publish(held)
    await swarm.publish(Task(id="nobody-serves", kind="plan-later", input={}))

    async def parked() -> bool:
        return any(t.task_id == held.id and t.rounds >= 1 for t in await swarm.tasks(TaskState.PAUSED))

    await eventually(parked, timeout=60, what="the held task parked")
    async with serving(swarm, actions_token=token) as url, browser_page(url) as (page, navigated, errors):
        out = page.locator("#action-out")
        await page.locator("#token-form input[name=token]").fill(token)
        await page.locator("#token-form button[type=submit]").click()
        await expect(page.locator("#token-state")).to_have_text("token set for this tab")
        assert await page.evaluate("sessionStorage.getItem('reverie-web-token')") == token

        form = page.locator("#submit-form")
        await form.locator("input[name=kind]").fill("plan")
        await form.locator("input[name=id]").fill("from-page")
        await form.locator("textarea[name=input]").fill("{not json")
        await form.locator("button[type=submit]").click()
        await expect(out).to_contain_text("the input is not JSON")
        await form.locator("textarea[name=input]").fill(json.dumps(load_task("dns-cutover")))
        await form.locator("button[type=submit]").click()
        await expect(out).to_contain_text("queued from-page")
        row = page.locator("#tasks tr.task", has=page.locator('a[href="/task/from-page"]'))
        await expect(row).to_be_visible(timeout=60_000)
        await expect(row.locator("td.status-accepted")).to_have_text("accepted")
        assert (await stored(swarm, "from-page")).status is ResultStatus.ACCEPTED

        queued = page.locator("#live tr.live", has=page.locator('a[href="/task/nobody-serves"]'))
        await queued.locator('button[data-action="cancel"]').click()
        await expect(out).to_contain_text("nobody-serves: cancel requested: it ends cancelled when a dreamer takes it")
        await not_reloaded(page, navigated)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "web-actions.png"), full_page=True)

        await row.get_by_role("link", name="from-page").click()
        await page.wait_for_url("**/task/from-page")
        await expect(page.locator(".candidate.accepted.chosen")).to_have_count(1)

        await page.goto(url + "task/held")  # waiting for its result, paused: resume it from its page
        await expect(page.locator(".waiting")).to_contain_text("waiting for the result")
        await expect(page.locator("#state")).to_contain_text("paused")
        navigated.clear()
        async with page.expect_response(lambda r: r.url.endswith("/api/task/held/resume")) as answer:
            await page.locator('#task-acts button[data-action="resume"]').click()
        assert (await answer.value).status == 200  # (its body and message go with the reload: not waited for)
        await expect(page.locator(".candidate.accepted.chosen")).to_have_count(1, timeout=60_000)  # reloaded once
        assert navigated == [url + "task/held"], navigated
        assert (await stored(swarm, "held")).resumes == 1
        assert errors == [], errors
    shot = ARTIFACTS / "web-actions.png"
    assert shot.read_bytes().startswith(b"\x89PNG") and 10_000 < shot.stat().st_size < 600_000


async def test_the_command_with_actions(nats_url: str, tmp_path: Path) -> None:
    path = tmp_path / "swarm.toml"
    path.write_text(f'swarm = "test"\ndata_dir = "data"\n[nats]\nurl = "{nats_url}"\n{LOCAL_AGENTS}')
    (tmp_path / "token").write_text("  from-the-file\n")
    env = {k: v for k, v in os.environ.items() if k != "REVERIE_WEB_TOKEN"}
    runs: list[tuple[list[str], dict[str, str]]] = [
        (["--allow-actions"], env),  # a new token, printed once
        (["--allow-actions", "--token-file", str(tmp_path / "token")], env),
        (["--allow-actions"], {**env, "REVERIE_WEB_TOKEN": "from-the-env"}),
    ]
    for flags, environ in runs:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reverie.runtime.cli", "web", str(path), "--port", "0", *flags, env=environ,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(30):
                line = (await proc.stdout.readline()).decode()
            found = re.fullmatch(r"reverie web: (http://127\.0\.0\.1:\d+/)  \(actions on; (.*)\)\n", line)
            assert found, line
            url, said = found.groups()
            token = ("from-the-file" if "--token-file" in flags else
                     "from-the-env" if "REVERIE_WEB_TOKEN" in environ else said.removeprefix("token: "))
            if token == said.removeprefix("token: "):
                assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token), said  # secrets.token_urlsafe(24)
            else:
                assert token not in line and said.startswith("token from "), said
            status, body = await post(url + "api/submit", {"input": {}}, token=token)
            assert status == 400 and "kind" in body["message"]  # past the token: the body is what is wrong
            assert (await post(url + "api/submit", {"input": {}}, token=token + "x"))[0] == 401
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                rest, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            assert token not in (rest + err).decode()  # printed once, on the line above, if at all
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    refused = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reverie.runtime.cli", "web", str(path), "--token-file", str(tmp_path / "token"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        _, err = await refused.communicate()
    assert refused.returncode == 2 and "--token-file goes with --allow-actions" in err.decode()
    (tmp_path / "empty").write_text(" \n")
    empty = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reverie.runtime.cli", "web", str(path), "--allow-actions", "--token-file",
        str(tmp_path / "empty"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        _, err = await empty.communicate()
    assert empty.returncode == 1 and "(it is empty)" in err.decode()
