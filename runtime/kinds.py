"""Agent kinds: built-in names and `module:Class` references, and the `Roster` of a config's
agents (each class imported, its handlers bound and its options checked once per process)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from .agent import Agent, BoundHandler
from .errors import ConfigError, HandlerSignatureError, ReverieError, validation_field

if TYPE_CHECKING:
    from .config import AgentSpec, SwarmConfig

__all__ = ["BUILTIN", "Kind", "Roster", "import_object", "resolve_agent_class"]

BUILTIN: dict[str, str] = {
    "dreamer": "reverie.agents.dreamer:Dreamer",
    "rule-critic": "reverie.agents.critics:RuleCritic",
    "plan-critic": "reverie.agents.critics:PlanCritic",
    "budget-critic": "reverie.agents.critics:BudgetCritic",
    "llm-critic": "reverie.agents.claude.critic:ClaudeCritic",
    "sandbox-critic": "reverie.agents.code.critic:SandboxCritic",
}


def import_object(target: str, *, what: str = "") -> Any:
    """The attribute `target` (`module:attr`) names; `what` says what it is for in errors.
    Raises ImportError, AttributeError, TypeError."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise TypeError(f"expected 'module:attr', got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import module {module_name!r}{' for ' + what if what else ''}: {exc}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r}")
    return obj


def resolve_agent_class(kind: str) -> type[Agent]:
    """Import the Agent subclass that `kind` names. Raises ImportError, AttributeError, TypeError."""
    target = BUILTIN.get(kind, kind)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        known = ", ".join(sorted(BUILTIN))
        raise TypeError(f"expected a built-in kind ({known}) or 'module:Class', got {kind!r}")
    cls = import_object(target, what=f"kind {kind!r}")
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise TypeError(f"{target} is not a subclass of reverie.runtime.Agent")
    return cls


@dataclass(frozen=True)
class Kind:
    """One agent of a config, loaded: its class, its bound handlers, its checked options."""

    spec: AgentSpec
    cls: type[Agent]
    handlers: list[BoundHandler]
    options: msgspec.Struct

    @property
    def role(self) -> str:
        return self.cls.role


class Roster(Mapping[str, Kind]):
    """Every agent of a config by name. `Roster.of(config)` loads it once per config object:
    the config check, the permissions and the host all read the same classes."""

    _loaded: ClassVar[dict[int, tuple[SwarmConfig, Roster]]] = {}

    def __init__(self, kinds: dict[str, Kind]) -> None:
        self._kinds = kinds

    def __getitem__(self, name: str) -> Kind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    @classmethod
    def of(cls, config: SwarmConfig, *, base_dir: Path | None = None) -> Roster:
        """The roster of `config`, loaded on first use; `module:Class` kinds import from
        `base_dir` (default: the config file's folder) too. Raises `ConfigError` naming the field."""
        hit = cls._loaded.get(id(config))
        if hit is not None and hit[0] is config:
            return hit[1]
        roster = cls._load(config, base_dir)
        if len(cls._loaded) >= 16:  # a process sees a handful of configs; tests see many
            cls._loaded.pop(next(iter(cls._loaded)))
        cls._loaded[id(config)] = (config, roster)
        return roster

    @classmethod
    def _load(cls, config: SwarmConfig, base_dir: Path | None) -> Roster:
        source = config.source
        # `module:Class` kinds are imported from the config's folder, the current directory or
        # installed packages (the supervisor gives agent processes the same PYTHONPATH).
        # Appended, never prepended, so a file there cannot shadow an installed module.
        if base_dir is None:
            base_dir = Path(source).resolve().parent if Path(source).is_file() else Path.cwd()
        for folder in (str(base_dir), os.getcwd()):
            if folder not in sys.path:
                sys.path.append(folder)
        return cls({spec.name: _kind(spec, i, source) for i, spec in enumerate(config.agents)})


def _kind(spec: AgentSpec, i: int, source: str) -> Kind:
    try:
        agent_cls = resolve_agent_class(spec.kind)
    except (ImportError, AttributeError, TypeError) as exc:
        raise ConfigError(source, f"$.agents[{i}].kind", str(exc)) from None
    try:
        options = msgspec.convert(spec.options, agent_cls.Options)
    except msgspec.ValidationError as exc:
        field, problem = validation_field(exc)
        raise ConfigError(source, f"$.agents[{i}].options{field[1:]}", problem) from None
    try:
        agent_cls.check_options(options)
    except ReverieError as exc:  # an option the agent refuses: named by `field` when it says
        field = getattr(exc, "field", "")
        field = field if not field or field.startswith(".") else "." + field
        raise ConfigError(source, f"$.agents[{i}].options{field}",
                          getattr(exc, "detail", "") if field else str(exc)) from None
    try:
        handlers = agent_cls.handlers(spec.subjects, options)
    except HandlerSignatureError as exc:
        raise ConfigError(source, f"$.agents[{i}].subjects", str(exc)) from None
    return Kind(spec=spec, cls=agent_cls, handlers=handlers, options=options)
