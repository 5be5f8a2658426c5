"""The web view's actions (`reverie web --allow-actions`): submit a task, pause, resume or cancel
one. Each needs `Authorization: Bearer <token>` (compared in constant time); a header, never a
cookie, so another site's page cannot make a browser send it (no CSRF). Without a token the
routes answer 403 `actions_disabled`. Every answer is JSON: `error` (a code) and `message` on
failure, the outcome on success."""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats.errors
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reverie.protocol import InvalidTaskId, Result, Task, TaskInfo, TaskState, new_id

from ..bus.history import MAX_RECENT
from ..client import Swarm, served_kinds
from ..errors import InvalidTaskKind, QueueFull, TaskTooLarge, validation_field
from .responses import json_response

__all__ = ["QUEUE_SCAN", "SubmitBody", "action_routes", "bearer_ok", "whereabouts"]

QUEUE_SCAN = MAX_RECENT
"""How many queued tasks `whereabouts` reads to find a task id among them (as many as `/api/live`
reads on every poll of the index)."""


class SubmitBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /api/submit`: `id` is optional (a new one is made); an unserved `kind` is refused
    unless `queue_anyway` (as `reverie submit --queue-anyway`)."""

    kind: str
    input: Any
    id: str | None = None
    queue_anyway: bool = False


def bearer_ok(request: Request, token: str) -> bool:
    """True if `request` carries `Authorization: Bearer <token>`."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # as bytes (compare_digest refuses a str that is not ASCII): starlette decodes a header's
    # bytes as latin-1, so this gives back the bytes sent, and a client sends the token as UTF-8
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("latin-1"), token.encode())


async def whereabouts(swarm: Swarm, task_id: str, *, timeout: float) -> Result | TaskInfo:  # noqa: ASYNC109 - a reply window
    """The stored result of `task_id`, else what the swarm knows of it: running or paused (the
    dreamers' checkpoints, a pause request), queued (among the first `QUEUE_SCAN` queued tasks, or
    assumed so when the queue holds more), else `UNKNOWN`. Raises `InvalidTaskId`."""
    result = await swarm.bus.get_result(task_id)
    if result is not None:
        return result
    info, queued = await asyncio.gather(swarm.task_info(task_id, timeout=timeout),
                                        swarm.tasks(TaskState.QUEUED, limit=QUEUE_SCAN, timeout=timeout))
    if info.state is TaskState.DONE:  # stored meanwhile
        return await swarm.bus.get_result(task_id) or info
    if info.state is TaskState.UNKNOWN and (len(queued) >= QUEUE_SCAN or any(t.task_id == task_id for t in queued)):
        info = msgspec.structs.replace(info, state=TaskState.QUEUED)
    return info


def _error(http_status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
           **more: Any) -> Response:
    return json_response({"error": code, "message": message, **more}, http_status, headers=headers)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None past `limit` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def action_routes(swarm: Swarm, token: str | None, *, status_window: float) -> list[Route]:
    """`POST /api/submit` and `POST /api/task/<id>/pause|resume|cancel`; with `token` None they
    answer 403 `actions_disabled`. Raises ValueError for an empty token."""
    if token is not None and not token.strip():
        raise ValueError("an empty token would let anyone act")
    kinds = served_kinds(swarm.config) if token is not None else None  # loads the agents' classes: only if used
    body_limit = 2 * swarm.config.max_message_bytes + 4096  # JSON is larger than the msgpack it becomes

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if token is None:
                return _error(403, "actions_disabled", "this web view is read-only: start it with "
                                                       "`reverie web CONFIG --allow-actions`")
            if not bearer_ok(request, token):
                return _error(401, "unauthorized", "send the token `reverie web` printed as "
                                                   "`Authorization: Bearer <token>`",
                              headers={"WWW-Authenticate": 'Bearer realm="reverie web"'})
            try:
                return await handler(request)
            except (TimeoutError, nats.errors.Error) as exc:
                return _error(503, "bus_unavailable", f"the swarm's bus did not answer: {exc!r}")
        return endpoint

    async def submit(request: Request) -> Response:
        data = await _body(request, body_limit)
        if data is None:
            return _error(413, "too_large", f"the request body is over {body_limit:,} bytes")
        try:
            body = msgspec.json.decode(data, type=SubmitBody)
        except msgspec.ValidationError as exc:
            field, problem = validation_field(exc)
            return _error(400, "bad_request", f"{field}: {problem}", field=field)
        except msgspec.DecodeError as exc:
            return _error(400, "bad_request", f"the body is not JSON: {exc}", field="$")
        if kinds is not None and body.kind not in kinds and not {"*", ">"} & kinds and not body.queue_anyway:
            return _error(422, "unserved_kind", f"no agent of this swarm's config serves tasks of kind "
                                                f"{body.kind!r} (it serves: {', '.join(sorted(kinds)) or 'none'}); "
                                                f"it would wait in the queue forever. Send \"queue_anyway\": true "
                                                f"if an agent elsewhere serves it.", served=sorted(kinds))
        task = Task(id=body.id or new_id(), kind=body.kind, input=body.input)
        try:
            if body.id is not None and (done := await swarm.bus.get_result(task.id)) is not None:
                return _error(409, "finished", f"task {task.id} finished already ({done.status.value}); "
                                               f"its result is at /task/{task.id}", task_id=task.id,
                              status=done.status.value)
            queued = await swarm.bus.submit(task)
        except InvalidTaskId as exc:
            return _error(400, "invalid_task_id", exc.detail, field="$.id")
        except InvalidTaskKind as exc:
            return _error(400, "invalid_kind", str(exc), field="$.kind")
        except TaskTooLarge as exc:
            return _error(413, "too_large", str(exc))
        except QueueFull as exc:
            return _error(429, "queue_full", str(exc))
        return json_response({"task_id": task.id, "kind": task.kind, "queued": queued,
                              "message": "queued" if queued else "already queued (the same id, moments ago)"}, 202)

    async def control(action: str, request: Request) -> Response:
        task_id = str(request.path_params["task_id"])
        try:
            where = await whereabouts(swarm, task_id, timeout=status_window)
        except InvalidTaskId as exc:
            return _error(400, "invalid_task_id", exc.detail, task_id=task_id)
        if isinstance(where, Result):
            return _error(409, "finished", f"finished ({where.status.value}); there is nothing to {action}",
                          task_id=task_id, status=where.status.value)
        if where.state is TaskState.UNKNOWN:
            return _error(404, "unknown_task", "no dreamer knows this task, it is not queued and no result is "
                                               "stored (is the id right?)", task_id=task_id)
        state = where.state
        if action == "pause":
            await swarm.pause(task_id)
            said = ("it is paused already" if state is TaskState.PAUSED else
                    "pause requested: a dreamer that takes it holds it at round 1" if state is TaskState.QUEUED else
                    "pause requested: it pauses after its current round")
            return json_response({"task_id": task_id, "action": action, "state": state, "message": said}, 202)
        if action == "resume":
            requeued = await swarm.resume(task_id)
            said = "queued again; it resumes at its next round" if requeued else \
                "pause cleared (the task was not parked)"
            return json_response({"task_id": task_id, "action": action, "state": state, "requeued": requeued,
                                  "message": said})
        requeued = await swarm.cancel(task_id)
        said = ("it was parked: queued again, to end cancelled" if requeued else
                "cancel requested: it ends cancelled when a dreamer takes it" if state is TaskState.QUEUED else
                "cancel requested: it ends cancelled after its current round")
        return json_response({"task_id": task_id, "action": action, "state": state, "requeued": requeued,
                              "message": said}, 202)

    return [Route("/api/submit", guarded(submit), methods=["POST"]),
            *(Route(f"/api/task/{{task_id}}/{action}", guarded(functools.partial(control, action)), methods=["POST"])
              for action in ("pause", "resume", "cancel"))]
