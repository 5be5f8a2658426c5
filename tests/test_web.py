"""`reverie web`: the read-only web view, against in-process agents on a real nats-server, checked
over HTTP (JSON and HTML) and in a real headless browser (Debian's chromium, driven by Playwright).

A missing chromium fails the browser test (install it: `apt-get install chromium`); nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec

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
    Verdict,
)
from reverie.runtime import connect
from reverie.runtime.web import WebServer, create_app, recent_results

from .conftest import LOCAL_AGENTS, ROOT, agents_running, eventually, load_task, make_config

MEDIAN = json.loads((ROOT / "deploy" / "tasks" / "code" / "median.json").read_text())
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
EXTERNAL = re.compile(r'(src|href)="(https?:)?//|<link|<script|@import|url\(')
"""What would load another resource (a script, a stylesheet, a font, an image from elsewhere)."""

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
    def fetch() -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, resp.headers["content-type"], resp.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers["content-type"], exc.read().decode()
    return await asyncio.to_thread(fetch)


@contextlib.asynccontextmanager
async def serving(swarm: Any) -> AsyncIterator[str]:
    """The app on a free loopback port in this event loop; yields its URL."""
    server = WebServer(create_app(swarm, status_window=0.3), host="127.0.0.1", port=0)
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
            assert '<meta http-equiv="refresh" content="5">' in index
            assert '<table id="live">' in index and '<tr class="live state-queued"><td>waiting</td>' in index
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
                assert "<script>" not in page


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
