"""Every message that crosses the bus, as frozen msgspec Structs.

Each Struct is tagged with an explicit, stable name (never the class name) so a reply
subject can carry `Verdict | Error` and be decoded as a tagged union. `v` is the protocol
version; a decoder refuses versions it does not know with a typed error. Version 2 added the
candidate's typed `artifact` (steps, a patch, a text); a version 1 candidate still decodes,
its artifact read from `steps` (`artifact_of`).
"""

from __future__ import annotations

import enum
import time
import uuid
from typing import Any

import msgspec

from .errors import ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "AgentState",
    "AgentStatus",
    "Artifact",
    "Budget",
    "Candidate",
    "Decision",
    "Edit",
    "Error",
    "JudgedCandidate",
    "Lifecycle",
    "Message",
    "MissingVerdict",
    "Patch",
    "Reason",
    "Result",
    "ResultStatus",
    "RoundTrace",
    "StatusRequest",
    "Steps",
    "Task",
    "TaskInfo",
    "TaskList",
    "TaskListQuery",
    "TaskProgress",
    "TaskQuery",
    "TaskState",
    "Text",
    "Usage",
    "Verdict",
    "artifact_of",
    "new_id",
]

PROTOCOL_VERSION = 2
SUPPORTED_VERSIONS = frozenset({1, 2})
"""Versions a decoder accepts: what changed since 1 has defaults, so an old message decodes."""


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="t"):
    """Base of all wire messages."""

    v: int = PROTOCOL_VERSION


def new_id() -> str:
    """A short random id, unique enough for tasks and candidates."""
    return uuid.uuid4().hex[:16]


# --------------------------------------------------------------------------- tasks


class Budget(msgspec.Struct, frozen=True, kw_only=True):
    """How much dreaming a task may spend before it ends `exhausted`."""

    max_rounds: int = 5
    max_seconds: float = 60.0
    candidates_per_round: int = 3


class Task(Message, frozen=True, tag="task"):
    """A unit of work published on `rv.<swarm>.task.<kind>`.

    `input` is the user's payload; the agent that handles `kind` validates it (the offline
    planner expects a plan spec object, a text agent a string).
    """

    id: str
    kind: str
    input: Any
    budget: Budget | None = None
    created_at: float = msgspec.field(default_factory=time.time)


# --------------------------------------------------------------------------- dreaming


class Decision(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    FLAG = "flag"  # harmful: the candidate is quarantined, never executed or returned


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """One finding of a critic. `code` is machine-readable so a reasoner can steer by it.

    Codes the shipped critics use: `forbidden_op`, `harmful`, `missing_required`, `order`,
    `over_budget`, `risk`, `invalid_path`, `pattern`, `too_long`, `malformed`; the sandbox
    critic's `test_failed`, `patch_failed`, `timeout`, `crash`, `syntax_error`,
    `edits_protected`, `network`, `write_outside`.
    `ops` names the operations (or failing tests) concerned; `limit`/`value` carry numbers
    where relevant; `where` the places in the task's files (`src/x.py:12`) a failure went through.
    """

    code: str
    text: str
    ops: tuple[str, ...] = ()
    limit: float | None = None
    value: float | None = None
    where: tuple[str, ...] = ()


class Edit(msgspec.Struct, frozen=True, kw_only=True):
    """One change to a file of a code task: `search` (found exactly once) becomes `replace`;
    with `search` None, `replace` is the file's whole new content."""

    path: str
    replace: str
    search: str | None = None


class Steps(msgspec.Struct, frozen=True, kw_only=True, tag="steps", tag_field="a"):
    """A plan's candidate: the operations in order."""

    steps: tuple[str, ...]


class Patch(msgspec.Struct, frozen=True, kw_only=True, tag="patch", tag_field="a"):
    """A code task's candidate: edits to its editable files."""

    edits: tuple[Edit, ...]


class Text(msgspec.Struct, frozen=True, kw_only=True, tag="text", tag_field="a"):
    """A free-form answer."""

    text: str


Artifact = Steps | Patch | Text


class Candidate(Message, frozen=True, tag="cand"):
    """One reasoning path for a task, sent to every critic kind.

    The task travels with the candidate so critics stay stateless.
    """

    id: str
    task: Task
    round: int
    index: int
    steps: tuple[str, ...] = ()
    text: str = ""
    """A human-readable summary (a plan's path, a patch's diff), what rule critics match."""
    rationale: str = ""
    dreamer: str = ""
    artifact: Artifact | None = None
    """What the candidate proposes, typed; None in a version 1 candidate (see `artifact_of`)."""


def artifact_of(cand: Candidate) -> Artifact:
    """The candidate's artifact; for a version 1 candidate, its steps."""
    return cand.artifact if cand.artifact is not None else Steps(steps=cand.steps)


class Verdict(Message, frozen=True, tag="verdict"):
    """A critic's judgement of one candidate; `usage` is what judging cost (a model-backed critic)."""

    candidate_id: str
    critic: str
    decision: Decision
    score: float = 0.0
    reasons: tuple[Reason, ...] = ()
    usage: Usage | None = None


class Error(Message, frozen=True, tag="error"):
    """Sent instead of the expected reply when a request could not be served. `usage`: what
    the attempt cost anyway (a model answered, but not usably)."""

    code: str
    message: str
    subject: str = ""
    usage: Usage | None = None

    @classmethod
    def of(cls, exc: ProtocolError, *, subject: str = "") -> Error:
        """The answer to a request whose bytes could not be decoded: the decoder's reason and detail."""
        return cls(code=exc.reason, message=exc.detail, subject=subject)


# --------------------------------------------------------------------------- results


class ResultStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    EXHAUSTED = "exhausted"  # budget spent without an accepted candidate
    FAILED = "failed"  # the task could not be worked on (bad input, handler error)
    CANCELLED = "cancelled"  # an operator cancelled it (`reverie task CONFIG cancel ID`)


class MissingVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """Why a critic gave no verdict on a candidate: the `Error` it answered with (`judge_failed`,
    `judge_no_call`, `refusal`...), or `no_answer` when it did not answer in time."""

    critic: str
    code: str
    message: str
    usage: Usage | None = None  # what the failed attempt cost (a model answered, but not usably)


class JudgedCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """A candidate with the verdicts it received and the dreamer's decision on it."""

    candidate: Candidate
    verdicts: tuple[Verdict, ...]
    outcome: Decision
    missing: tuple[str, ...] = ()  # critics that gave no verdict before the deadline
    why_missing: tuple[MissingVerdict, ...] = ()  # one per name in `missing`
    latency: dict[str, float] = {}  # by critic, seconds from the first request to its verdict (kept ones)


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Model tokens a round (or a whole task) used, as the API reported them, and what they
    cost by the deploy config's price table (`cost_usd` None when the model has no price)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    requests: int = 0
    batched: int = 0  # of `requests`, how many went through the Message Batches API
    cost_usd: float | None = 0.0
    unpriced: tuple[str, ...] = ()  # models without a price: their calls are not in `cost_usd`

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens,
                     cache_creation_input_tokens=self.cache_creation_input_tokens + other.cache_creation_input_tokens,
                     cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
                     requests=self.requests + other.requests, batched=self.batched + other.batched, cost_usd=cost,
                     unpriced=tuple(dict.fromkeys(self.unpriced + other.unpriced)))

    @property
    def prompt_tokens(self) -> int:
        """Every input token, however billed (fresh, written to cache, read from cache)."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


class RoundTrace(msgspec.Struct, frozen=True, kw_only=True):
    round: int
    candidates: tuple[JudgedCandidate, ...]
    elapsed: float
    usage: Usage | None = None  # model usage of the round's proposals (None: no model behind them)


class Result(Message, frozen=True, tag="result"):
    """The outcome of a task, published on `rv.<swarm>.result.<task_id>`."""

    task_id: str
    status: ResultStatus
    agent: str
    answer: Any = None
    accepted: JudgedCandidate | None = None
    rounds: int = 0
    trace: tuple[RoundTrace, ...] = ()
    best_rejected: tuple[JudgedCandidate, ...] = ()
    reason: str = ""
    elapsed: float = 0.0
    resumes: int = 0  # how often dreaming resumed from a checkpoint (after a restart or a pause)
    usage: Usage | None = None  # every model call made for the task: reasoner and critics
    usage_by_agent: dict[str, Usage] = {}  # the same, by the agent that made the calls
    recalled: int = 0  # lessons from earlier, similar tasks the reasoner was given
    finished_at: float = msgspec.field(default_factory=time.time)


class TaskProgress(Message, frozen=True, tag="task_progress"):
    """A round a dreamer just judged, published on `rv.<swarm>.events.task.<task_id>` as it
    happens (what `submit --wait` shows); nothing waits for it, nothing stores it."""

    task_id: str
    agent: str
    round: RoundTrace
    max_rounds: int
    recalled: int = 0


# --------------------------------------------------------------------------- control plane


class AgentState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"


class Lifecycle(Message, frozen=True, tag="lifecycle"):
    """Published on `rv.<swarm>.events.agent.<agent>` when an agent changes state."""

    agent: str
    replica: int
    pid: int
    state: AgentState
    detail: str = ""
    at: float = msgspec.field(default_factory=time.time)


class AgentStatus(Message, frozen=True, tag="status"):
    """An agent's answer to a status request, and the body of its heartbeat."""

    agent: str
    replica: int
    pid: int
    state: AgentState
    role: str
    started_at: float
    in_flight: int = 0
    counters: dict[str, int] = {}
    memory_bytes: int = 0  # bytes the replica's open memory store uses (0: its memory is not open)
    host: str = ""  # the host it runs on (`reverie up --host-name`)
    node: str = ""  # the NATS server it is connected to (its server_name, else its URL)


class StatusRequest(Message, frozen=True, tag="status_req"):
    """Asks every live agent for its `AgentStatus`."""


class TaskState(enum.StrEnum):
    UNKNOWN = "unknown"
    QUEUED = "queued"  # in the task queue, no dreamer on it yet (said by clients, never by a dreamer)
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


class TaskQuery(Message, frozen=True, tag="task_query"):
    """Asks the dreamers on `rv.<swarm>.ctl.task.show` what they know of a task."""

    task_id: str


class TaskListQuery(Message, frozen=True, tag="task_list_query"):
    """Asks the dreamers on `rv.<swarm>.ctl.task.list` for the tasks they hold a checkpoint of."""


class TaskList(Message, frozen=True, tag="task_list"):
    """A dreamer's running and paused tasks."""

    agent: str
    tasks: tuple[TaskInfo, ...] = ()


class TaskInfo(Message, frozen=True, tag="task_info"):
    """A dreamer's view of one task, from its checkpoint."""

    task_id: str
    state: TaskState
    agent: str = ""
    rounds: int = 0
    candidates: int = 0
    rejected: int = 0
    spent: float = 0.0
    resumes: int = 0

    @classmethod
    def of_result(cls, result: Result) -> TaskInfo:
        """A finished task as `task show` and `task list` tell it, from its stored result."""
        cands = [j for r in result.trace for j in r.candidates]
        return cls(task_id=result.task_id, state=TaskState.DONE, agent=result.agent, rounds=result.rounds,
                   candidates=len(cands), rejected=sum(1 for j in cands if j.outcome is not Decision.ACCEPT),
                   spent=result.elapsed, resumes=result.resumes)


Reply = Verdict | Error
