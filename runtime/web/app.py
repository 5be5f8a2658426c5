"""The web view's ASGI app (starlette) over a connected `Swarm`, and the uvicorn server that runs it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from reverie.protocol import InvalidTaskId, Result, TaskInfo, TaskState

from ..client import Swarm
from .pages import render_index, render_not_found, render_task
from .results import MAX_TASKS, TaskRow, recent_results, task_row

__all__ = ["STATUS_WINDOW", "WebServer", "create_app"]

STATUS_WINDOW = 0.5
"""Seconds a page waits for the agents' status replies."""


def _json(value: object, status_code: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status_code, media_type="application/json")


def create_app(swarm: Swarm, *, status_window: float = STATUS_WINDOW, max_tasks: int = MAX_TASKS) -> Starlette:
    """The read-only app: `/`, `/task/<id>`, `/api/agents`, `/api/tasks`, `/api/task/<id>`."""

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
        return HTMLResponse(render_index(status.swarm, status.agents, tasks, live=now))

    async def task_page(request: Request) -> Response:
        task_id, result = await result_of(request)
        if result is None:
            return HTMLResponse(render_not_found(task_id), status_code=404)
        return HTMLResponse(render_task(result))

    async def api_agents(request: Request) -> Response:
        return _json((await swarm.status(timeout=status_window)).agents)

    async def api_tasks(request: Request) -> Response:
        return _json(await rows())

    async def api_live(request: Request) -> Response:
        return _json(await live())

    async def api_task(request: Request) -> Response:
        task_id, result = await result_of(request)
        if result is None:
            return _json({"error": "not_found", "task_id": task_id}, 404)
        return _json(result)

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return _json({"error": "not_found", "path": request.url.path}, 404)
        return HTMLResponse(render_not_found(request.url.path), status_code=404)

    return Starlette(exception_handlers={404: not_found}, routes=[
        Route("/", index), Route("/task/{task_id}", task_page),
        Route("/api/agents", api_agents), Route("/api/tasks", api_tasks), Route("/api/live", api_live),
        Route("/api/task/{task_id}", api_task),
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
