"""`reverie web`: a read-only web view of a running swarm (starlette, served by uvicorn).

`/` lists the live agents and the recent tasks; `/task/<id>` shows a task's dream tree from its
stored `Result`; `/api/agents`, `/api/tasks` and `/api/task/<id>` give the same as JSON.
"""

from .app import STATUS_WINDOW, WebServer, create_app
from .command import DEFAULT_PORT, run_web, web
from .pages import render_index, render_not_found, render_task
from .results import MAX_TASKS, TaskRow, recent_results, task_kind, task_row

__all__ = ["DEFAULT_PORT", "MAX_TASKS", "STATUS_WINDOW", "TaskRow", "WebServer", "create_app", "recent_results",
           "render_index", "render_not_found", "render_task", "run_web", "task_kind", "task_row", "web"]
