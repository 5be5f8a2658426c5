"""A fake Anthropic Messages API on loopback, for tests and benchmarks.

What it fakes: a real HTTP server that the unpatched `anthropic` SDK talks to
(`AsyncAnthropic(base_url=fake.url, api_key=...)`): `POST /v1/messages` (JSON and SSE
streaming), `POST /v1/messages/count_tokens`, the Message Batches API (create, retrieve,
list, cancel, delete, JSONL results), the error body shape, API-key auth and prompt
caching. Responses are scripted (`fake.script(...)`, then `fake.responder`) and every
request is recorded (`fake.requests`), every successful reply's usage too (`fake.usage_log`).

What it does not: there is no model (replies are exactly what the test scripts), and token
counts are an approximation by rule, not a tokenizer:

* tokens of a block = ceil(len(canonical JSON of the block, minus `cache_control`) / 4),
  where canonical JSON = `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`;
* the prompt is the block sequence tools -> system blocks -> message content blocks (a string
  `system` or message `content` is one text block); input = sum over that sequence;
* output tokens = ceil(len(canonical JSON of the reply's content list) / 4).

Prompt caching follows the API's rules on that sequence: breakpoints are the blocks carrying
`cache_control` (at most 4, else 400; a top-level `cache_control` marks the last block). A
prefix (hash of the model and every block up to a breakpoint) below `min_cache_tokens` is
neither read nor written. The longest cached prefix ending at a breakpoint or up to 19 blocks
before one is read (`cache_read_input_tokens`, its TTL refreshed); the tokens from there to the
last breakpoint are written (`cache_creation_input_tokens`, split by TTL 5m / 1h in
`cache_creation`); the rest is `input_tokens`. TTLs run on `fake.clock` (monotonic by default).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import signal
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

import pytest

__all__ = ["FakeAnthropic", "Reply", "HttpError", "StreamError", "Hang", "Expire", "Action",
           "Recorded", "Batch", "fake_anthropic"]


@dataclass
class Reply:
    """A normal message. Missing `tool_use` ids are filled in; `usage` keys override the computed ones."""
    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    usage: dict[str, Any] | None = None

    @classmethod
    def text(cls, text: str) -> Reply:
        return cls([{"type": "text", "text": text}])

    @classmethod
    def tool(cls, name: str, input: dict[str, Any]) -> Reply:
        return cls.tools(name, [input])

    @classmethod
    def tools(cls, name: str, inputs: list[dict[str, Any]]) -> Reply:
        return cls([{"type": "tool_use", "name": name, "input": i} for i in inputs], "tool_use")


@dataclass
class HttpError:
    """An HTTP error response; `details` becomes `error.details` (the SDK picks a subclass by its `error_code`)."""
    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] | None = None


@dataclass
class StreamError:
    """Streaming: HTTP 200, `after_blocks` complete blocks of `reply`, the next block begun, then `event: error`.

    Non-streaming: HTTP 529 with `error_type`. In a batch: an `errored` entry."""
    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    after_blocks: int = 0
    reply: Reply | None = None


@dataclass
class Hang:
    """Sleep `seconds` (woken by `stop()`), then answer with `then`, or else the responder's action.

    In a batch the sleep is skipped."""
    seconds: float
    then: Action | None = None


@dataclass
class Expire:
    """A batch entry that expired (for a non-batch request: a 500)."""


Action = Union[Reply, HttpError, StreamError, Hang, Expire, Callable[[dict[str, Any]], "Action"]]
_ACTION_TYPES = (Reply, HttpError, StreamError, Hang, Expire)


@dataclass
class Recorded:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    time: float  # time.time() on arrival


@dataclass
class Batch:
    id: str
    requests: list[dict[str, Any]]  # [{"custom_id", "params"}], as sent
    created_at: datetime
    deadline: float | None  # monotonic time at which it ends by itself; None: only end_batch()
    processing_status: str = "in_progress"
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)  # JSONL lines, once ended


class _ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.action = HttpError(status, error_type, message)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _tokens(value: Any) -> int:
    return math.ceil(len(_canon(value)) / 4)


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _rfc3339(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def _ttl(cache_control: Any) -> float:
    return 3600.0 if isinstance(cache_control, dict) and cache_control.get("ttl") == "1h" else 300.0


def _chunks(s: str, n: int) -> list[str]:
    return [s[i:i + n] for i in range(0, len(s), n)] or [""]


def _unscripted(body: dict[str, Any]) -> Action:
    return HttpError(500, "api_error", "unscripted request: FakeAnthropic has no scripted action left "
                     "and no responder set", {"x-should-retry": "false"})


class FakeAnthropic:
    def __init__(self, *, api_key: str | None = None, batch_delay: float | None = 0.0,
                 min_cache_tokens: int = 0, port: int = 0) -> None:
        self.api_key = api_key
        self.batch_delay = batch_delay  # read when a batch is created
        self.min_cache_tokens = min_cache_tokens
        self.responder: Callable[[dict[str, Any]], Action] = _unscripted
        self.clock: Callable[[], float] = time.monotonic  # for cache TTLs and batch_delay
        self.requests: list[Recorded] = []
        self.usage_log: list[dict[str, Any]] = []
        self.batches: dict[str, Batch] = {}
        self.errors: list[str] = []  # tracebacks of bugs in the fake itself (answered with a 500)
        self._port = port
        self._script: deque[Action] = deque()
        self._cache: dict[str, tuple[float, float]] = {}  # prefix hash -> (expires, ttl)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeAnthropic:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        server = self._server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                                        name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes Hangs
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection ------------------------------------------------------------
    def script(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    def remaining(self) -> int:
        """How many scripted actions are not consumed yet."""
        with self._lock:
            return len(self._script)

    def message_requests(self) -> list[Recorded]:
        return [r for r in list(self.requests) if r.method == "POST" and r.path == "/v1/messages"]

    def batch_creates(self) -> list[Recorded]:
        return [r for r in list(self.requests) if r.method == "POST" and r.path == "/v1/messages/batches"]

    def usage_totals(self, *, batch: bool | None = None) -> dict[str, int]:
        """Sums of the token fields of `usage_log` (only batch or only sync entries if `batch` is given)."""
        keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
        with self._lock:
            rows = [u for u in self.usage_log if batch is None or u["batch"] == batch]
        return {k: sum(int(u.get(k) or 0) for u in rows) for k in keys}

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def end_batch(self, batch_id: str) -> Batch:
        """End a batch now: its entries are answered by the script/responder, in order."""
        with self._lock:
            b = self.batches[batch_id]
            if b.processing_status != "ended":
                canceled = b.processing_status == "canceling"
                b.results = [{"custom_id": r["custom_id"], "result": {"type": "canceled"} if canceled
                              else self._batch_result(r["custom_id"], r["params"])} for r in b.requests]
                b.processing_status, b.ended_at = "ended", datetime.now(timezone.utc)
            return b

    # -- actions -----------------------------------------------------------------------------
    def _next_action(self, body: dict[str, Any], *, in_batch: bool = False) -> Action:
        """The next scripted action (else the responder's), callables evaluated and Hangs slept through."""
        with self._lock:
            action: Action = self._script.popleft() if self._script else self.responder
        while True:
            while not isinstance(action, _ACTION_TYPES):
                if not callable(action):
                    raise TypeError(f"not an action: {action!r}")
                action = action(body)
            if not isinstance(action, Hang):
                return action
            if not in_batch and self._stopping.wait(action.seconds):
                raise ConnectionAbortedError("fake stopped during Hang")
            action = action.then if action.then is not None else self.responder

    def _reply_message(self, body: dict[str, Any], reply: Reply, *, commit: bool = True,
                       custom_id: str | None = None) -> dict[str, Any]:
        content = [dict(b) for b in reply.content]
        for b in content:
            if b.get("type") in ("tool_use", "server_tool_use") and "id" not in b:
                b["id"] = _new_id("toolu_" if b["type"] == "tool_use" else "srvtoolu_")
            if b.get("type") == "thinking":
                b.setdefault("signature", "fake-signature")
        with self._lock:
            usage = self._input_usage(body, commit=commit)
            usage["output_tokens"] = _tokens(content)
            usage["service_tier"] = "batch" if custom_id is not None else "standard"
            usage.update(reply.usage or {})
            if commit:
                self.usage_log.append({**usage, "batch": custom_id is not None,
                                       **({"custom_id": custom_id} if custom_id is not None else {})})
        return {"id": _new_id("msg_"), "type": "message", "role": "assistant",
                "model": body.get("model", "claude-fake"), "content": content,
                "stop_reason": reply.stop_reason, "stop_sequence": None, "usage": usage}

    def _batch_result(self, custom_id: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            action = self._next_action(params, in_batch=True)
            if isinstance(action, Reply):
                return {"type": "succeeded", "message": self._reply_message(params, action, custom_id=custom_id)}
        except _ApiError as e:
            action = e.action
        if isinstance(action, Expire):
            return {"type": "expired"}
        etype, msg = (action.error_type, action.message) if isinstance(action, (HttpError, StreamError)) \
            else ("api_error", f"unexpected action {action!r}")
        return {"type": "errored", "error": {"type": "error", "error": {"type": etype, "message": msg},
                                             "request_id": _new_id("req_")}}

    # -- the token and cache model -------------------------------------------------------------
    def _prompt(self, body: dict[str, Any]) -> tuple[list[str], list[int], dict[int, float]]:
        """Cumulative prefix hashes and token counts per block, and breakpoint index -> TTL seconds."""
        blocks: list[tuple[str, Any]] = [("tools", t) for t in body.get("tools") or []]
        system = body.get("system")
        if isinstance(system, str):
            blocks.append(("system", {"type": "text", "text": system}))
        elif isinstance(system, list):
            blocks += [("system", b) for b in system]
        for m in body.get("messages") or []:
            c = m.get("content")
            blocks += [(m.get("role", "user"), b) for b in
                       ([{"type": "text", "text": c}] if isinstance(c, str) else c or [])]
        hashes: list[str] = []
        cum: list[int] = []
        bps: dict[int, float] = {}
        h, total = hashlib.sha256(str(body.get("model")).encode()).hexdigest(), 0
        for i, (tag, block) in enumerate(blocks):
            if isinstance(block, dict) and block.get("cache_control"):
                bps[i] = _ttl(block["cache_control"])
                block = {k: v for k, v in block.items() if k != "cache_control"}
            text = _canon(block)
            total += math.ceil(len(text) / 4)
            h = hashlib.sha256(f"{h}\0{tag}\0{text}".encode()).hexdigest()
            hashes.append(h)
            cum.append(total)
        if len(bps) > 4:
            raise _ApiError(400, "invalid_request_error",
                            f"A maximum of 4 blocks with cache_control may be provided. Found {len(bps)}.")
        if body.get("cache_control") and blocks:
            bps.setdefault(len(blocks) - 1, _ttl(body["cache_control"]))
        return hashes, cum, bps

    def _input_usage(self, body: dict[str, Any], *, commit: bool) -> dict[str, Any]:
        hashes, cum, bps = self._prompt(body)
        now = self.clock()
        eligible = sorted((i, t) for i, t in bps.items() if cum[i] >= self.min_cache_tokens)
        read_at = -1
        for b, _ in eligible:
            for i in range(b, max(b - 20, -1), -1):  # the API looks back up to 20 blocks per breakpoint
                hit = self._cache.get(hashes[i])
                if hit is not None and hit[0] > now:
                    read_at = max(read_at, i)
                    break
        created = {300.0: 0, 3600.0: 0}
        prev = read_at
        for b, t in eligible:
            if b > prev:
                created[t] += cum[b] - (cum[prev] if prev >= 0 else 0)
                if commit:
                    self._cache[hashes[b]] = (now + t, t)
                prev = b
        if commit and read_at >= 0:
            t = self._cache[hashes[read_at]][1]
            self._cache[hashes[read_at]] = (now + t, t)
        if commit:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        read = cum[read_at] if read_at >= 0 else 0
        creation = created[300.0] + created[3600.0]
        return {"input_tokens": (cum[-1] if cum else 0) - read - creation,
                "cache_creation_input_tokens": creation, "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": created[300.0],
                                   "ephemeral_1h_input_tokens": created[3600.0]}}

    # -- HTTP ----------------------------------------------------------------------------------
    def _handle(self, h: _Handler, method: str) -> None:
        raw = h.rfile.read(int(h.headers.get("content-length") or 0))
        path = h.path.partition("?")[0]
        try:
            body, bad_json = (json.loads(raw) if raw else None), False
        except ValueError:
            body, bad_json = None, True
        rec = Recorded(method, path, {k.lower(): v for k, v in h.headers.items()}, body, time.time())
        with self._lock:
            self.requests.append(rec)
        try:
            auth = rec.headers.get("authorization", "")  # anthropic>=2 sends the api_key as a Bearer token
            key = rec.headers.get("x-api-key") or (auth[7:] if auth.lower().startswith("bearer ") else None)
            if self.api_key is not None and key != self.api_key:
                raise _ApiError(401, "authentication_error", "invalid x-api-key")
            if bad_json:
                raise _ApiError(400, "invalid_request_error", "request body is not valid JSON")
            self._route(h, method, path, body)
        except _ApiError as e:
            h.send_error_action(e.action)
        except (ConnectionError, TimeoutError):
            h.close_connection = True  # the client went away (or the fake stopped)
        except Exception:
            self.errors.append(traceback.format_exc())
            if not h.sent:
                h.send_error_action(HttpError(500, "api_error", "fake server bug:\n" + self.errors[-1]))
            h.close_connection = True

    def _route(self, h: _Handler, method: str, path: str, body: Any) -> None:
        m = re.fullmatch(r"/v1/messages/batches/([^/]+)(/results|/cancel)?", path)
        if method == "POST" and path == "/v1/messages":
            self._messages(h, body if isinstance(body, dict) else {})
        elif method == "POST" and path == "/v1/messages/count_tokens":
            with self._lock:
                cum = self._prompt(body or {})[1]
            h.send_json(200, {"input_tokens": cum[-1] if cum else 0})
        elif method == "POST" and path == "/v1/messages/batches":
            h.send_json(200, self._batch_json(self._create_batch(body or {})))
        elif method == "GET" and path == "/v1/messages/batches":
            with self._lock:
                data = [self._batch_json(self._tick(b)) for b in reversed(self.batches.values())]
            h.send_json(200, {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None})
        elif m and m[1] in self.batches and (method, m[2]) in (("GET", None), ("POST", "/cancel"), ("DELETE", None)):
            with self._lock:
                b = self._tick(self.batches[m[1]])
                if m[2] == "/cancel" and b.processing_status == "in_progress":
                    b.processing_status, b.cancel_initiated_at = "canceling", datetime.now(timezone.utc)
                if method == "DELETE":
                    del self.batches[b.id]
                out = {"id": b.id, "type": "message_batch_deleted"} if method == "DELETE" else self._batch_json(b)
            h.send_json(200, out)
        elif m and m[1] in self.batches and method == "GET" and m[2] == "/results":
            with self._lock:
                b = self._tick(self.batches[m[1]])
            if b.processing_status != "ended":
                raise _ApiError(404, "not_found_error", f"results of {b.id} are not available yet")
            h.send_bytes(200, "application/binary", "".join(_canon(r) + "\n" for r in b.results).encode())
        else:
            raise _ApiError(404, "not_found_error", f"{method} {path} not found")

    def _messages(self, h: _Handler, body: dict[str, Any]) -> None:
        action = self._next_action(body)
        if isinstance(action, Reply):
            msg = self._reply_message(body, action)
            h.send_sse(_sse_events(msg)) if body.get("stream") else h.send_json(200, msg)
        elif isinstance(action, StreamError) and body.get("stream"):
            msg = self._reply_message(body, action.reply or Reply.text("partial answer"), commit=False)
            events = _sse_events(msg, cut_after=action.after_blocks)
            error = {"type": "error", "error": {"type": action.error_type, "message": action.message},
                     "request_id": h.request_id}
            h.send_sse(events + [("error", error)])
        elif isinstance(action, StreamError):
            h.send_error_action(HttpError(529, action.error_type, action.message))
        elif isinstance(action, Expire):
            h.send_error_action(HttpError(500, "api_error", "Expire() is only meaningful for a batch entry"))
        else:
            assert isinstance(action, HttpError)
            h.send_error_action(action)

    def _create_batch(self, body: dict[str, Any]) -> Batch:
        reqs = body.get("requests")
        if not isinstance(reqs, list) or not reqs or not all(
                isinstance(r, dict) and isinstance(r.get("custom_id"), str) and isinstance(r.get("params"), dict)
                for r in reqs):
            raise _ApiError(400, "invalid_request_error", "requests: a non-empty list of {custom_id, params}")
        if len({r["custom_id"] for r in reqs}) != len(reqs):
            raise _ApiError(400, "invalid_request_error", "requests: custom_id values must be unique")
        with self._lock:
            delay = self.batch_delay
            b = Batch(_new_id("msgbatch_"), reqs, datetime.now(timezone.utc),
                      None if delay is None else self.clock() + delay)
            self.batches[b.id] = b
        return b

    def _tick(self, b: Batch) -> Batch:
        """End a batch whose time has come (or that is being canceled)."""
        if b.processing_status == "canceling" or (
                b.processing_status == "in_progress" and b.deadline is not None and self.clock() >= b.deadline):
            self.end_batch(b.id)
        return b

    def _batch_json(self, b: Batch) -> dict[str, Any]:
        counts = {k: 0 for k in ("processing", "succeeded", "errored", "canceled", "expired")}
        for r in b.results:
            counts[r["result"]["type"]] += 1
        counts["processing"] = len(b.requests) - len(b.results)
        ended = b.processing_status == "ended"
        return {"id": b.id, "type": "message_batch", "processing_status": b.processing_status,
                "request_counts": counts, "created_at": _rfc3339(b.created_at),
                "expires_at": _rfc3339(b.created_at + timedelta(hours=24)), "ended_at": _rfc3339(b.ended_at),
                "cancel_initiated_at": _rfc3339(b.cancel_initiated_at), "archived_at": None,
                "results_url": f"{self.url}/v1/messages/batches/{b.id}/results" if ended else None}


def _sse_events(msg: dict[str, Any], cut_after: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The event sequence of a streamed `msg`; with `cut_after`, stop after that many blocks and
    the start (and first delta) of the next one, as a stream interrupted by an error is."""
    usage = msg["usage"]
    start = {**msg, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                                ("ping", {"type": "ping"})]
    for i, block in enumerate(msg["content"]):
        kind, first = block.get("type"), dict(block)
        deltas: list[dict[str, Any]] = []
        if kind == "text":
            first["text"] = ""
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"], 24)]
        elif kind in ("tool_use", "server_tool_use"):
            first["input"] = {}
            deltas = [{"type": "input_json_delta", "partial_json": c} for c in _chunks(_canon(block["input"]), 16)]
        elif kind == "thinking":
            first.update(thinking="", signature="")
            deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block["thinking"], 24)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": first}))
        if cut_after is not None and i >= cut_after:
            return events + [("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
                             for d in deltas[:1]]
        events += [("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    if cut_after is not None:
        return events
    delta_usage = {k: usage.get(k) for k in
                   ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")}
    return events + [
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": msg["stop_reason"],
                                                              "stop_sequence": None}, "usage": delta_usage}),
        ("message_stop", {"type": "message_stop"})]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeAnthropic) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Unblock keep-alive handler threads: their reads return EOF."""
        with self.conn_lock:
            for sock in self.connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # connection-level noise (resets); bugs in the fake are caught in FakeAnthropic._handle


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    sent = False
    request_id = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        self.sent, self.request_id = False, _new_id("req_")
        self.server.fake._handle(self, method)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.sent = True
        self.send_response(status, "Overloaded" if status == 529 else None)
        for k, v in {"request-id": self.request_id, **headers}.items():
            self.send_header(k, v)
        self.end_headers()

    def send_bytes(self, status: int, content_type: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self._head(status, {"content-type": content_type, "content-length": str(len(data)), **(headers or {})})
        self.wfile.write(data)

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, "application/json", _canon(obj).encode(), headers)

    def send_error_action(self, e: HttpError) -> None:
        err: dict[str, Any] = {"type": e.error_type, "message": e.message}
        if e.details is not None:
            err["details"] = e.details
        self.send_json(e.status, {"type": "error", "error": err, "request_id": self.request_id}, e.headers)

    def send_sse(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self._head(200, {"content-type": "text/event-stream", "cache-control": "no-cache", "connection": "close"})
        self.close_connection = True
        for name, data in events:
            self.wfile.write(f"event: {name}\ndata: {_canon(data)}\n\n".encode())
            self.wfile.flush()


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A started FakeAnthropic, stopped after the test."""
    with FakeAnthropic() as fake:
        yield fake


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tests.fake_anthropic", description="A fake Anthropic Messages API on loopback.")
    p.add_argument("--port-file", required=True, help="write the URL here (and to stdout) once listening")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--batch-delay", default="0", help="seconds, or 'none' to never end batches by themselves")
    p.add_argument("--api-key", default=None)
    p.add_argument("--min-cache-tokens", type=int, default=0)
    p.add_argument("--reply-text", default=None, help="answer every request with this text (default: 500)")
    args = p.parse_args(argv)
    fake = FakeAnthropic(api_key=args.api_key, min_cache_tokens=args.min_cache_tokens, port=args.port,
                         batch_delay=None if args.batch_delay.lower() == "none" else float(args.batch_delay))
    if args.reply_text is not None:
        text: str = args.reply_text
        fake.responder = lambda body: Reply.text(text)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with fake:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(fake.url)
        os.replace(tmp, args.port_file)
        print(fake.url, flush=True)
        while not done.wait(0.5):
            pass


if __name__ == "__main__":
    main()
