"""The web view's ASGI app (starlette) over a connected `Swarm`, and the uvicorn server that runs it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reverie.protocol import InvalidTaskId, Result, TaskInfo, TaskState, check_task_id

from ..client import Swarm, served_kinds
from .actions import action_routes, whereabouts
from .pages import render_index, render_not_found, render_task, render_waiting
from .responses import html_response, json_response
from .results import MAX_TASKS, TaskRow, recent_results, task_row

__all__ = ["STATUS_WINDOW", "WebServer", "create_app"]

STATUS_WINDOW = 0.5
"""Seconds a page waits for the agents' status replies."""


def create_app(swarm: Swarm, *, status_window: float = STATUS_WINDOW, max_tasks: int = MAX_TASKS,
               actions_token: str | None = None) -> Starlette:
    """The app: `/`, `/task/<id>`, `/api/agents`, `/api/tasks`, `/api/live`, `/api/task/<id>` (its
    stored result), `/api/task/<id>/state` (a `TaskInfo`: done, queued, running, paused or unknown), and
    the actions (`POST /api/submit`, `/api/task/<id>/pause|resume|cancel`), which need
    `actions_token` as a bearer token (None: read-only, they answer 403)."""
    actions = actions_token is not None
    kinds = sorted(k for k in served_kinds(swarm.config) or () if k not in ("*", ">")) if actions else []

    async def rows() -> list[TaskRow]:
        return [task_row(result, seq) for seq, result in await recent_results(swarm.bus, max_tasks)]

    async def result_of(request: Request) -> tuple[str, Result | None]:
        task_id = str(request.path_params["task_id"])
        try:
            return task_id, await swarm.bus.get_result(task_id)
        except InvalidTaskId:
            return task_id, None  # not a task id: no task has it

    async def live() -> list[TaskInfo]:
        """Tasks without a stored result yet: queued, running, paused."""
        return [t for t in await swarm.tasks(timeout=status_window) if t.state is not TaskState.DONE]

    async def index(request: Request) -> Response:
        status, tasks, now = await asyncio.gather(swarm.status(timeout=status_window), rows(), live())
        return html_response(render_index(status.swarm, status.agents, tasks, live=now, actions=actions,
                                          kinds=kinds))

    async def task_page(request: Request) -> Response:
        task_id = str(request.path_params["task_id"])
        try:
            check_task_id(task_id)
        except InvalidTaskId:
            return html_response(render_not_found(task_id), status_code=404)
        where = await whereabouts(swarm, task_id, timeout=status_window)
        if isinstance(where, Result):
            return html_response(render_task(where))
        if where.state is TaskState.UNKNOWN:
            return html_response(render_not_found(task_id, wait=True), status_code=404)
        return html_response(render_waiting(where, actions=actions))

    async def api_agents(request: Request) -> Response:
        return json_response((await swarm.status(timeout=status_window)).agents)

    async def api_tasks(request: Request) -> Response:
        return json_response(await rows())

    async def api_live(request: Request) -> Response:
        return json_response(await live())

    async def api_task(request: Request) -> Response:
        task_id, result = await result_of(request)
        if result is None:
            return json_response({"error": "not_found", "task_id": task_id}, 404)
        return json_response(result)

    async def api_task_state(request: Request) -> Response:
        task_id = str(request.path_params["task_id"])
        try:
            where = await whereabouts(swarm, task_id, timeout=status_window)
        except InvalidTaskId as exc:
            return json_response({"error": "invalid_task_id", "message": exc.detail, "task_id": task_id}, 400)
        return json_response(TaskInfo.of_result(where) if isinstance(where, Result) else where)

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return json_response({"error": "not_found", "path": request.url.path}, 404)
        return html_response(render_not_found(request.url.path), status_code=404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        allow = exc.headers.get("Allow", "") if isinstance(exc, HTTPException) and exc.headers else ""
        return json_response({"error": "method_not_allowed", "message": f"{request.method} is not allowed here"
                              + (f" (allowed: {allow})" if allow else "")}, 405, headers={"Allow": allow} if allow
                             else None)

    async def failed(request: Request, exc: Exception) -> Response:  # then logged by uvicorn, with its traceback
        if request.url.path.startswith("/api/"):
            return json_response({"error": "internal_error", "message": "the web view failed on this request; "
                                  "its log says why"}, 500)
        return html_response("<!doctype html><title>reverie: error</title><h1>The web view failed on this "
                             "request</h1><p>Its log says why.</p>", status_code=500)

    return Starlette(exception_handlers={404: not_found, 405: not_allowed, Exception: failed}, routes=[
        Route("/", index), Route("/task/{task_id}", task_page),
        Route("/api/agents", api_agents), Route("/api/tasks", api_tasks), Route("/api/live", api_live),
        Route("/api/task/{task_id}", api_task), Route("/api/task/{task_id}/state", api_task_state),
        *action_routes(swarm, actions_token, status_window=status_window),
    ])


class WebServer(uvicorn.Server):
    """uvicorn's server for `app`, leaving signals to the caller (stop it with `stop()`), that
    sets `listening` once bound and says where (`url`, also to `on_listening`; port 0 picks a free
    port). A port it cannot bind makes `serve()` raise SystemExit (uvicorn's way), after logging why."""

    def __init__(self, app: Starlette, *, host: str = "127.0.0.1", port: int = 8470,
                 on_listening: Callable[[str], None] | None = None) -> None:
        super().__init__(uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning",
                                        access_log=False, server_header=False))
        self.listening = asyncio.Event()
        self.url = ""
        self._on_listening = on_listening

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the caller handles signals (uvicorn's own would re-raise them after serving)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.servers and self.servers[0].sockets:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
            self.listening.set()
            if self._on_listening is not None:
                self._on_listening(self.url)

    def stop(self) -> None:
        self.should_exit = True
