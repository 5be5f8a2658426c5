"""`reverie web`: a web view of a running swarm (starlette, served by uvicorn).

`/` lists the live agents, the tasks in progress and the recent tasks, kept current in place;
`/task/<id>` shows a task's dream tree from its stored `Result` (or waits for it); `/api/agents`,
`/api/live`, `/api/tasks` and `/api/task/<id>` give the same as JSON. With `--allow-actions`,
`POST /api/submit` and `/api/task/<id>/pause|resume|cancel` act, behind a bearer token.
"""

from .actions import SubmitBody, action_routes, bearer_ok, whereabouts
from .app import STATUS_WINDOW, WebServer, create_app
from .command import DEFAULT_PORT, TOKEN_ENV, actions_token, run_web, web
from .pages import render_index, render_not_found, render_task, render_waiting
from .results import MAX_TASKS, TaskRow, recent_results, task_kind, task_row

__all__ = ["DEFAULT_PORT", "MAX_TASKS", "STATUS_WINDOW", "TOKEN_ENV", "SubmitBody", "TaskRow", "WebServer",
           "action_routes", "actions_token", "bearer_ok", "create_app", "recent_results", "render_index",
           "render_not_found", "render_task", "render_waiting", "run_web", "task_kind", "task_row", "web",
           "whereabouts"]
