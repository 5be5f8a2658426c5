"""The agent API: subclass `Agent`, decorate typed async methods with `@handler`.

    class Echo(Agent):
        @handler("task.echo")
        async def echo(self, task: Task, ctx: Context) -> Result:
            return ctx.answer(task, task.input)

The message type comes from the annotation of the handler's first parameter. Patterns are
relative to the swarm (`task.echo` means `rv.<swarm>.task.echo`). Patterns under `task.` are
consumed durably from the task stream (acked once the handler's `Result` is stored); all
others are core NATS subscriptions, and a returned message is sent as the reply.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import types
import typing
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, get_args, get_origin

import msgspec

from reverie.protocol import Message, Result, ResultStatus, Task

from .durations import record
from .errors import HandlerSignatureError

if TYPE_CHECKING:
    from .bus.bus import Bus
    from .config import AgentSpec, SwarmConfig
    from .gossip.node import GossipNode
    from .memory import Memory

__all__ = ["Agent", "BoundHandler", "Context", "HandlerSpec", "HostServices", "NoOptions", "handler"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_MARK = "__reverie_handler__"


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of an agent that takes none."""


@dataclass(frozen=True)
class HandlerSpec:
    pattern: str
    queue: str | None
    """Queue group; `None` means every replica receives every message."""
    concurrency: int
    also: tuple[str, ...] = ()
    """More `task.*` patterns of a task handler: one durable consumer takes every kind they name."""

    @property
    def patterns(self) -> tuple[str, ...]:
        return (self.pattern, *self.also)


@dataclass(frozen=True)
class BoundHandler:
    """A handler checked and ready to dispatch."""

    name: str
    spec: HandlerSpec
    message_type: Any
    func: Callable[..., Awaitable[Any]]
    wants_ctx: bool

    @property
    def durable(self) -> bool:
        return self.spec.pattern.startswith("task.")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The task kinds a task handler serves (none for a core handler)."""
        return tuple(p.split(".", 1)[1] for p in self.spec.patterns) if self.durable else ()


def handler(pattern: str, *, shared: bool = True, concurrency: int = 1) -> Callable[[F], F]:
    """Subscribe the decorated method to `pattern` (relative to `rv.<swarm>.`).

    `shared=True` puts the agent's replicas in one queue group (named after the agent) so
    each message goes to one replica; `shared=False` gives every replica every message.
    `concurrency` bounds how many messages this handler works on at once (the deploy
    config's per-agent `concurrency` overrides it).
    """
    _check_pattern(pattern)
    if concurrency < 1:
        raise HandlerSignatureError(f"handler concurrency must be >= 1, got {concurrency}")

    def mark(func: F) -> F:
        setattr(func, _MARK, HandlerSpec(pattern, "" if shared else None, concurrency))
        return func

    return mark


class Context:
    """What a handler gets besides its message: the bus, its config, a logger, and what the
    host owns for it (its memory, the one path that stores results, the swarm's roles)."""

    def __init__(self, *, bus: Bus, config: SwarmConfig, spec: AgentSpec, options: Any,
                 replica: int, log: logging.Logger, counters: Counter[str] | None = None) -> None:
        self.bus = bus
        self.config = config
        self.spec = spec
        self.options = options
        self.replica = replica
        self.log = log
        self.counters: Counter[str] = Counter() if counters is None else counters
        """The replica's counters, shown by `reverie status --json`: count what you drop."""
        self.gossip: GossipNode | None = None
        """This agent's gossip node (share lessons and memories with peers), or None when
        gossip is off or the agent has no keys."""
        self.host: HostServices | None = None
        """Set by the host before `on_start`; the methods below go through it."""

    def observe(self, name: str, seconds: float) -> None:
        """Record that something took `seconds` in the replica's histogram `name` (lowercase
        `[a-z0-9_]`): the heartbeat carries it among the counters, and the swarm's `/metrics`
        serves it as `reverie_<name>_seconds{agent,replica}`. O(1); raises ValueError for a bad
        name or a negative duration. The key convention is in `reverie.runtime.durations`."""
        record(self.counters, name, seconds)

    def _services(self) -> HostServices:
        if self.host is None:
            raise RuntimeError("this Context has no host: run the agent in an AgentHost")
        return self.host

    async def memory(self) -> Memory:
        """This agent's memory (`<data_dir>/<name>`: LMDB, encrypted at rest), opened on first
        use. One per process: the gossip node shares it, and the host closes it after `on_stop`."""
        return await self._services().memory()

    async def store_result(self, result: Result) -> bool:
        """Store a result that no delivered task message waits for (a task resumed from a
        checkpoint) through the host's one path to the results stream: deduplicated by task
        id, retried through an outage. False if the bus stayed down past the host's patience."""
        return await self._services().store_result(result)

    def peers(self, role: str | None = None) -> list[str]:
        """The names of this swarm's agents, in config order; with `role`, those whose class
        has that role (a dreamer asks for its critics this way)."""
        roles = self._services().roles()
        return [name for name, r in roles.items() if role is None or r == role]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def subjects(self) -> Any:
        return self.bus.subjects

    def answer(self, task: Task, answer: Any) -> Result:
        """An accepted `Result` for `task` carrying `answer`."""
        return Result(task_id=task.id, status=ResultStatus.ACCEPTED, agent=self.name, answer=answer)

    def fail(self, task: Task, reason: str) -> Result:
        return Result(task_id=task.id, status=ResultStatus.FAILED, agent=self.name, reason=reason)


class HostServices(typing.Protocol):
    """What an agent's host provides through its `Context` (see `AgentHost`)."""

    async def memory(self) -> Memory: ...

    async def store_result(self, result: Result) -> bool: ...

    def roles(self) -> dict[str, str]: ...


class Agent:
    """Base class of every agent. Override `on_start`/`on_stop`; add `@handler` methods.

    `role` tells the swarm what the agent is for: the dreamer sends candidates to every
    agent whose role is `critic` and waits for one verdict per critic agent.
    `Options` is the msgspec Struct the deploy config's `options` table is checked against.
    """

    role: ClassVar[str] = "agent"
    Options: ClassVar[type[msgspec.Struct]] = NoOptions

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.log = ctx.log

    @property
    def options(self) -> Any:
        return self.ctx.options

    @classmethod
    def check_options(cls, options: Any) -> None:
        """Deeper checks of a config's options than their types (a reasoner that can be built,
        patterns that compile), run when the config is loaded: a bad value stops `reverie up`
        with a config error instead of crash-looping the agent. Raise a `ReverieError`."""

    async def on_start(self) -> None:
        """Called once the bus is connected, before any handler is subscribed."""

    async def on_stop(self) -> None:
        """Called after handlers stopped receiving and in-flight work ended."""

    @classmethod
    def subjects(cls, options: Any) -> dict[str, str | Sequence[str]]:
        """Patterns that handlers take from the agent's checked options, by handler name (a
        dreamer serves the task kinds its reasoner can dream about); the deploy config's
        `subjects` overrides them. None by default."""
        return {}

    @classmethod
    def handlers(cls, subjects: Mapping[str, str | Sequence[str]] | None = None,
                 options: Any = None) -> list[BoundHandler]:
        """Every `@handler` method of the class, checked. Raises `HandlerSignatureError`.

        `subjects` (a deploy config's `[agents.subjects]`) moves handlers to other patterns by
        handler name, e.g. `{"dream": "task.plan-eu"}`: a task handler stays on `task.*`, a
        core handler off it (durable and core delivery are not interchangeable). A task handler
        may take a list (`["task.plan", "task.code"]`): one consumer serves every kind named.
        With `options`, `subjects(options)` gives the defaults."""
        found: list[BoundHandler] = []
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            spec = getattr(member, _MARK, None)
            if spec is not None:
                found.append(_bind(cls, name, member, spec))
        moved = {**(cls.subjects(options) if options is not None else {}), **(subjects or {})}
        for name, value in moved.items():
            i = next((i for i, h in enumerate(found) if h.name == name), None)
            if i is None:
                raise HandlerSignatureError(f"{cls.__name__} has no handler {name!r} "
                                            f"(handlers: {', '.join(h.name for h in found) or 'none'})")
            found[i] = _moved(found[i], value)
        return found


def _moved(h: BoundHandler, value: str | Sequence[str]) -> BoundHandler:
    patterns = [value] if isinstance(value, str) else list(value)
    if not patterns or (len(patterns) > 1 and not h.durable):
        raise HandlerSignatureError(f"handler {h.name!r} takes " + ("one or more task.* patterns" if h.durable
                                    else "one pattern") + f", got {value!r}")
    for pattern in patterns:
        _check_pattern(pattern)
        if pattern.startswith("task.") != h.durable:
            raise HandlerSignatureError(f"handler {h.name!r} is on {h.spec.pattern!r}; it can move to "
                                        + ("another task.* subject" if h.durable else "a subject outside task.*")
                                        + f", not {pattern!r}")
    unique = tuple(dict.fromkeys(patterns))
    return dataclasses.replace(h, spec=dataclasses.replace(h.spec, pattern=unique[0], also=unique[1:]))


def _check_pattern(pattern: object) -> None:
    if not isinstance(pattern, str) or not pattern or pattern.startswith(".") or " " in pattern:
        raise HandlerSignatureError(f"handler pattern must be a relative subject like 'task.echo', got {pattern!r}")


def _is_message_type(tp: Any) -> bool:
    if get_origin(tp) in (typing.Union, types.UnionType):
        return all(_is_message_type(arg) for arg in get_args(tp))
    return isinstance(tp, type) and issubclass(tp, Message)


def _bind(cls: type, name: str, func: Callable[..., Any], spec: HandlerSpec) -> BoundHandler:
    where = f"{cls.__name__}.{name}"
    hint = (f"write it as `async def {name}(self, msg: SomeMessage, ctx: Context) -> Reply | None` "
            "(ctx is optional; SomeMessage is a reverie.protocol message type)")
    if not inspect.iscoroutinefunction(func):
        raise HandlerSignatureError(f"handler {where} must be `async def`; {hint}")
    params = list(inspect.signature(func).parameters.values())
    if len(params) not in (2, 3) or any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
        raise HandlerSignatureError(f"handler {where} takes (self, msg) or (self, msg, ctx); {hint}")
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:  # unresolvable annotations: report them, whatever the cause
        raise HandlerSignatureError(f"handler {where}: cannot resolve annotations ({exc}); {hint}") from None
    message_type = hints.get(params[1].name)
    if message_type is None or not _is_message_type(message_type):
        raise HandlerSignatureError(
            f"handler {where}: parameter {params[1].name!r} must be annotated with a message type, "
            f"got {message_type!r}; {hint}")
    if spec.pattern.startswith("task.") and message_type is not Task:
        raise HandlerSignatureError(f"handler {where} on {spec.pattern!r} receives tasks: annotate "
                                    f"{params[1].name!r} as `Task`; {hint}")
    return BoundHandler(name, spec, message_type, func, wants_ctx=len(params) == 3)
