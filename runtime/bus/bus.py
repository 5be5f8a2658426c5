"""The bus: one nats-py connection, the swarm's JetStream streams, and fan-out requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from types import TracebackType

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from reverie.protocol import (
    Codec,
    Result,
    Subjects,
    Task,
    check_task_id,
    encode,
    new_id,
    valid_token,
)

from ..errors import (
    InvalidTaskKind,
    NatsUnreachable,
    NotAuthorized,
    QueueFull,
    TaskTooLarge,
)
from ..keyfiles import read_private
from ..limits import StreamsConfig
from ..tracing.spans import trace_headers
from .retry import API_TIMEOUT, PATIENCE, Attempts, retrying
from .streams import ensure_streams, wait_streams

__all__ = ["NO_RESPONDERS", "QUEUE_FULL", "SEED_SIZE", "STATUS", "Bus", "Reply", "read_seed"]

log = logging.getLogger("reverie.bus")

SEED_SIZE = 58
"""Bytes of an encoded NKey seed (`SU…`)."""


def read_seed(path: Path) -> bytes:
    """The NKey seed in `path` (a 0600 file; see `keyfiles.read_private`)."""
    return read_private(path, SEED_SIZE)


QUEUE_FULL = (10077, 10078)
"""JetStream's "maximum messages exceeded" and "maximum bytes exceeded"."""
STATUS, NO_RESPONDERS = "Status", "503"
"""The header and code of the server's "no responders" answer to a request."""


class Reply(msgspec.Struct, frozen=True):
    """One answer to `Bus.request_many`. `sender` is the responder's name from the reply's
    subject (`<inbox>.<name>`), which the server lets only that user publish on when the bus
    is authenticated; "" when a responder answered on the bare inbox."""

    sender: str
    data: bytes
    at: float = 0.0  # when it arrived, by `time.monotonic()` (0.0 when unknown)


class _Gather:
    __slots__ = ("done", "expect", "replies", "unnamed", "waiting")

    def __init__(self, expect: int, senders: Collection[str] | None) -> None:
        self.replies: list[Reply] = []
        self.expect = expect
        self.waiting = set(senders) if senders is not None else None
        self.unnamed = 0
        self.done = asyncio.Event()

    def add(self, reply: Reply) -> None:
        self.replies.append(reply)
        if self.waiting is None:
            finished = len(self.replies) >= self.expect
        else:  # an unnamed reply (a raw-NATS responder) may be any of those still awaited
            if reply.sender in self.waiting:
                self.waiting.discard(reply.sender)
            elif not reply.sender:
                self.unnamed += 1
            finished = len(self.waiting) <= self.unnamed or len(self.replies) >= self.expect
        if finished:
            self.done.set()



async def _stop(task: asyncio.Future[None]) -> None:
    """Cancel `task` until it has ended. nats-py's first-connect retry loop can lose a single
    cancellation (on Python 3.11 `asyncio.wait_for` drops one that lands as a refused connect
    fails), and would then retry forever: `reverie up` hung on SIGTERM while connecting."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)

class Bus:
    """A connected bus for one swarm. Build it with `await Bus.connect(...)`; close with `close()`.

    `user` is the NATS user (the agent's name, `_client`, `_admin`) this connection speaks
    for: it names the connection's inboxes and signs its fan-out replies. `authenticated`
    says the server checked it (NKey credentials), so reply senders can be trusted."""

    def __init__(self, nc: Client, subjects: Subjects, *, max_message_bytes: int,
                 closing: asyncio.Event | None = None, user: str = "_client",
                 authenticated: bool = False) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=API_TIMEOUT)
        self.subjects = subjects
        self.max_message_bytes = max_message_bytes
        self.user = user
        self.authenticated = authenticated
        self._result_codec: Codec[Result] = Codec(Result, max_bytes=max_message_bytes, max_depth=None)
        self._inbox_prefix = ""
        self._inbox_sub: Subscription | None = None
        self._gathers: dict[str, _Gather] = {}
        self._next_token = 0
        self._closing = closing or asyncio.Event()

    @classmethod
    async def connect(cls, servers: list[str], *, swarm: str, name: str, user: str = "_client",
                      nkeys_seed: Path | None = None, tls: ssl.SSLContext | None = None,
                      max_message_bytes: int = 512 * 1024, connect_timeout: float = 5.0,
                      on_reconnect: Callable[[], Awaitable[None]] | None = None, randomize: bool = True) -> Bus:
        """Connect with reconnects forever and a short ping cycle, so a dead server is
        noticed within seconds rather than minutes.

        `nkeys_seed` is the user's NKey seed file (0600; read here, never logged); `tls`
        verifies the server. Refused credentials raise `NotAuthorized` at once
        instead of retrying forever. `randomize=False` tries `servers` in order (a host's
        own node first), else they are shuffled to spread the connections."""
        subjects = Subjects(swarm)
        seed = read_seed(nkeys_seed).decode() if nkeys_seed is not None else None
        if tls is not None:
            _quiet_tls_eof()
        connected = asyncio.Event()
        closing = asyncio.Event()
        last_error: list[Exception] = []

        async def error_cb(exc: Exception) -> None:
            if not connected.is_set():
                if _refused(exc):
                    raise NotAuthorized(user, servers)  # out of nc.connect: retrying cannot help
                last_error[:] = [exc]  # said once, when connecting gives up
                return
            if closing.is_set():
                return
            log.warning("nats: %s", exc)

        async def disconnected_cb() -> None:
            if not closing.is_set():
                log.warning("disconnected from nats")

        async def reconnected_cb() -> None:
            log.info("reconnected to nats")
            if on_reconnect is not None:
                await on_reconnect()

        nc = Client()
        try:
            # nats-py retries a first connection forever: give up after connect_timeout
            connecting = asyncio.ensure_future(nc.connect(  # nats-py annotates the two timeouts int; it uses floats
                servers=servers, name=name, connect_timeout=connect_timeout,  # type: ignore[arg-type]
                allow_reconnect=True, max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,  # type: ignore[arg-type]
                ping_interval=5, max_outstanding_pings=2, error_cb=error_cb,
                disconnected_cb=disconnected_cb, reconnected_cb=reconnected_cb,
                pending_size=64 * 1024 * 1024, nkeys_seed_str=seed, tls=tls,
                inbox_prefix=subjects.inbox(user), dont_randomize=not randomize,
            ))
            try:
                await asyncio.wait({connecting}, timeout=connect_timeout)
            finally:  # our own cancellation, or the timeout: the attempt must end before we go on
                await _stop(connecting)
            try:
                connecting.result()
            except asyncio.CancelledError:  # stopped at the timeout
                raise TimeoutError from None
        except NotAuthorized:
            closing.set()
            await nc.close()
            raise
        except (TimeoutError, nats.errors.NoServersError, OSError) as exc:
            closing.set()
            await nc.close()
            raise NatsUnreachable(servers, connect_timeout, last_error[0] if last_error else exc) from None
        connected.set()
        return cls(nc, subjects, max_message_bytes=max_message_bytes, closing=closing, user=user,
                   authenticated=seed is not None)

    @property
    def node(self) -> str:
        """The NATS server this connection is on: its `server_name` (nats-py keeps the server's
        INFO private, and has no public accessor for it), else its URL; "" while disconnected."""
        name = getattr(self.nc, "_server_info", {}).get("server_name", "")
        url = self.nc.connected_url
        return str(name) if name else (url.netloc if url is not None else "")

    async def close(self) -> None:
        """Drain: finish delivering what subscriptions hold, flush, then close."""
        if self.nc.is_closed:
            return
        self._closing.set()
        try:
            await self.nc.drain()
        except (TimeoutError, nats.errors.ConnectionClosedError, nats.errors.FlushTimeoutError):
            await self.nc.close()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # ------------------------------------------------------------------ streams

    async def ensure_streams(self, limits: StreamsConfig | None = None, *, create: bool | None = None) -> None:
        """Create (or update) the task and result streams, bounded by `limits` (and replicated
        as it says). Idempotent; waits through a cluster electing its leaders. Without `create`,
        a config naming the host that creates them (`[streams] creator`) only waits for them:
        its supervisor passes `create=True`."""
        limits = limits or StreamsConfig()
        if create is False or (create is None and limits.creator is not None):
            await wait_streams(self.js, self.subjects)
            return
        await ensure_streams(self.js, self.subjects, limits, max_message_bytes=self.max_message_bytes)

    # ------------------------------------------------------------------ publishing

    async def publish(self, subject: str, message: msgspec.Struct, *, reply: str = "") -> None:
        """Publish on core NATS, with the current span's trace context when there is one."""
        await self.nc.publish(subject, encode(message), reply=reply, headers=trace_headers())

    async def submit(self, task: Task, *, msg_id: str | None = None) -> bool:
        """Queue a task durably. Returns False when JetStream saw this message id (default:
        the task id) within the dedupe window already. Raises `InvalidTaskId` or
        `InvalidTaskKind` for an id or kind that is not one subject token, `TaskTooLarge`
        before sending a task over the message size limit, `QueueFull` when the task stream's
        limits refuse it. Retried through leader elections (see `retry`) with the same id."""
        check_task_id(task.id)
        if not valid_token(task.kind):
            raise InvalidTaskKind(task.kind)
        data = encode(task)  # once: measured, then sent
        limit = min(self.max_message_bytes, self.nc.max_payload or self.max_message_bytes)
        if len(data) > limit:
            raise TaskTooLarge(task.id, len(data), limit)
        headers, attempts = trace_headers({"Nats-Msg-Id": msg_id or task.id}), Attempts()
        subject = self.subjects.task(task.kind)
        try:
            ack = await retrying(f"queueing task {task.id}", lambda: self.js.publish(
                subject, data, headers=headers, timeout=attempts.timeout()))
        except nats.js.errors.APIError as exc:
            if exc.err_code in QUEUE_FULL:  # the stream's own limits, from [streams.tasks]
                raise QueueFull(task.id, exc.description or "full") from None
            raise
        # a duplicate after a retry is most likely our own unacknowledged first attempt
        return not ack.duplicate or attempts.count > 1

    async def store_result(self, result: Result, *, patience: float = PATIENCE) -> None:
        """Store a result durably (one per task: the results stream keeps the last per subject).
        Raises `InvalidTaskId` for an id that is not one subject token. Retried through leader
        elections for up to `patience` seconds with the same message id, so it is stored once."""
        check_task_id(result.task_id)
        subject, data = self.subjects.result(result.task_id), encode(result)
        headers, attempts = trace_headers({"Nats-Msg-Id": f"result:{result.task_id}"}), Attempts()
        what = f"storing the result of {result.task_id}"
        ack = await retrying(what, lambda: self.js.publish(subject, data, headers=headers, timeout=attempts.timeout()),
                             patience=patience)
        if ack.duplicate and await self.get_result(result.task_id) is None:
            # deduplicated against a publish that never reached the store (a full disk, a purge):
            # store it for real, or the task's message is acked with no result anywhere
            await retrying(what, lambda: self.js.publish(subject, data), patience=patience)

    async def get_result(self, task_id: str) -> Result | None:
        """The stored result of `task_id`, or None. Raises `InvalidTaskId` for an id that is not
        one subject token: `result.>` or `result.*` would fetch some other task's result."""
        check_task_id(task_id)
        stream, subject = self.subjects.results_stream, self.subjects.result(task_id)
        try:
            raw = await retrying(f"looking up the result of {task_id}", lambda: self.js.get_last_msg(stream, subject))
        except nats.js.errors.NotFoundError:
            return None
        assert raw.data is not None
        result = self._result_codec.decode(raw.data)
        return result if result.task_id == task_id else None  # published on this subject, naming another task

    # ------------------------------------------------------------------ fan-out requests

    def reply_subject(self, reply: str) -> str:
        """Where this connection answers a request whose reply subject is `reply`: under
        `rv.<swarm>.reply.` (a `request_many` inbox) on `<reply>.<user>`, naming itself;
        any other inbox as it is."""
        return f"{reply}.{self.user}" if reply.startswith(self.subjects.reply_root) else reply

    async def request_many(self, subject: str, message: msgspec.Struct, *, expect: int,
                           timeout: float,  # noqa: ASYNC109 - public API: a reply window, not a deadline
                           senders: Collection[str] | None = None) -> list[Reply]:
        """Publish once and collect up to `expect` replies until `timeout`; with `senders`,
        until each of them answered (replies from others are kept but do not end the wait:
        a fast responder nobody waits for must not cut off a slow one that is awaited).

        All requests of this bus share one wildcard inbox subscription (as nats-py muxes
        `request`), so a request costs one publish and no subscribe round trip. The inbox
        is `rv.<swarm>.reply.<user>.<nuid>.<token>`; responders answer on `<inbox>.<name>`
        (see `reply_subject`), and each `Reply` carries that name.
        """
        if self._inbox_sub is None:
            self._inbox_prefix = f"{self.subjects.replies(self.user)}.{new_id()}"
            self._inbox_sub = await self.nc.subscribe(f"{self._inbox_prefix}.>", cb=self._on_reply)
        self._next_token += 1
        token = str(self._next_token)
        gather = _Gather(expect, senders)
        self._gathers[token] = gather
        try:
            await self.nc.publish(subject, encode(message), reply=f"{self._inbox_prefix}.{token}",
                                  headers=trace_headers())
            with contextlib.suppress(TimeoutError):  # the window closed: what came is the answer
                async with asyncio.timeout(timeout):
                    await gather.done.wait()
            return gather.replies
        finally:
            del self._gathers[token]

    async def _on_reply(self, msg: Msg) -> None:
        token, _, sender = msg.subject[len(self._inbox_prefix) + 1:].partition(".")
        gather = self._gathers.get(token)
        if gather is None or "." in sender:
            return  # a late reply to a request that already gave up, or not a reply at all
        if not sender and not msg.data and msg.headers and msg.headers.get(STATUS) == NO_RESPONDERS:
            gather.done.set()  # the server's word that nobody listens: no reply, and no point waiting
            return
        gather.add(Reply(sender, msg.data, time.monotonic()))


def _eof_noise(record: logging.LogRecord) -> bool:
    return "eof_received() has no effect when using ssl" not in record.getMessage()


def _quiet_tls_eof() -> None:
    """asyncio warns on every TLS connection nats-py closes (its protocol asks to keep a
    half-closed transport, which TLS cannot): noise on every `reverie submit`, so drop it."""
    logger = logging.getLogger("asyncio")
    if _eof_noise not in logger.filters:
        logger.addFilter(_eof_noise)


def _refused(exc: Exception) -> bool:
    """The server turned the connection's credentials down (nats-py reports it two ways)."""
    return isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in str(exc).lower()
