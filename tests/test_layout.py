"""Gates that keep the house in order (issue 11): every module says what it offers, no module
imports its way into a circle, no module grows past what one job needs, and the built-in
agents are written against the same public runtime API a user has."""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = {"protocol": "reverie.protocol", "runtime": "reverie.runtime", "agents": "reverie.agents",
       "deploy": "reverie.deploy"}
MAX_LINES = 400
PUBLIC_RUNTIME = {"reverie.runtime", "reverie.runtime.memory", "reverie.runtime.memory.dreams",
                  "reverie.runtime.gossip", "reverie.runtime.sandbox", "reverie.runtime.tracing"}
"""What an agent may import from the runtime: what README's "Writing an agent" documents."""


@dataclass(frozen=True)
class Module:
    name: str
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(), filename=str(self.path))


def _modules() -> list[Module]:
    found = []
    for folder, package in TOP.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("").parts
            if "__pycache__" in rel:
                continue
            parts = rel[:-1] if rel[-1] == "__init__" else rel
            found.append(Module(".".join((package, *parts)), path))
    return found


MODULES = _modules()
NAMES = {m.name for m in MODULES}
IMPORTABLE = [m for m in MODULES if not m.name.endswith("__main__")]  # those run on import


def _defined(tree: ast.Module) -> set[str]:
    """Public classes and functions a module defines at top level."""
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and not node.name.startswith("_")}


@pytest.mark.parametrize("module", IMPORTABLE, ids=lambda m: m.name)
def test_every_module_declares_what_it_offers_in_all(module: Module) -> None:
    mod = importlib.import_module(module.name)
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{module.name} has no __all__"
    assert len(set(exported)) == len(exported), f"{module.name}.__all__ names a name twice"
    missing = [name for name in exported if not hasattr(mod, name)]
    assert not missing, f"{module.name}.__all__ names what it does not have: {missing}"
    unlisted = sorted(_defined(module.tree()) - set(exported))
    assert not unlisted, f"{module.name} defines public {unlisted} not in __all__ (list them or make them _private)"


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: Module) -> set[str]:
    """The reverie modules `module` imports when it runs: at top level and inside functions
    (a "late" import still runs), not under `if TYPE_CHECKING:` (it never does)."""
    out: set[str] = set()
    base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]

    def visit(nodes: list[ast.stmt] | list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name in NAMES)
            elif isinstance(node, ast.ImportFrom):
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                subs = {f"{target}.{a.name}" for a in node.names} & NAMES
                out.update(subs)
                if target in NAMES and len(subs) < len(node.names):
                    out.add(target)
            visit(list(ast.iter_child_nodes(node)))

    visit(list(module.tree().body))
    # importing `a.b.c` first runs the packages `a.b` (their `__init__`): an edge to each one
    # that is not already running because it contains this module
    mine = {".".join(module.name.split(".")[:i]) for i in range(1, module.name.count(".") + 2)}
    for name in list(out):
        parts = name.split(".")
        out.update(p for i in range(2, len(parts)) if (p := ".".join(parts[:i])) in NAMES and p not in mine)
    out.discard(module.name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_module_imports_its_way_into_a_circle() -> None:
    graph = {m.name: _imports(m) for m in MODULES}
    assert _cycles(graph) == []


def test_the_circle_finder_sees_late_imports_and_package_inits(tmp_path: Path) -> None:
    """The gate above could pass by never seeing late imports: it must see them."""
    pkg = tmp_path / "runtime"
    pkg.mkdir()
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def x():\n    from .a import y  # late\n    return y\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n")
    sub = pkg / "sub"
    sub.mkdir()
    (sub / "__init__.py").write_text("from ..d import z\n")  # a package that needs d ...
    (sub / "base.py").write_text("X = 1\n")
    (pkg / "d.py").write_text("from .sub.base import X\nz = X\n")  # ... while d needs sub.base
    mods = [Module(f"reverie.runtime.{n}", pkg / f"{n}.py") for n in "abcd"]
    mods += [Module("reverie.runtime.sub", sub / "__init__.py"), Module("reverie.runtime.sub.base", sub / "base.py")]
    global NAMES
    saved, NAMES = NAMES, {m.name for m in mods}
    try:
        graph = {m.name: _imports(m) for m in mods}
    finally:
        NAMES = saved
    assert graph["reverie.runtime.c"] == set()
    assert "reverie.runtime.sub" in graph["reverie.runtime.d"]  # importing sub.base runs sub first
    assert _cycles(graph) == [["reverie.runtime.a", "reverie.runtime.b"],
                              ["reverie.runtime.d", "reverie.runtime.sub"]]


def test_no_module_is_longer_than_one_job_needs() -> None:
    long = {m.name: n for m in MODULES if (n := len(m.path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_the_built_in_agents_use_only_the_public_runtime_api() -> None:
    """If the dreamer needs a private runtime module, so does a user's agent: make it public."""
    private = {m.name: sorted(i for i in _imports(m) if i.startswith("reverie.runtime") and i not in PUBLIC_RUNTIME)
               for m in MODULES if m.name.startswith("reverie.agents")}
    assert {k: v for k, v in private.items() if v} == {}


def test_the_public_runtime_names_stay() -> None:
    """The names issue 11 promised to keep (a user's `from reverie.runtime import ...`)."""
    import reverie.runtime

    kept = {"Agent", "AgentHost", "AgentSpec", "AgentStartFailed", "Bus", "ConfigError", "Context",
            "EmbeddedNats", "HandlerSignatureError", "InvalidTaskId", "NatsConfig", "NatsServerError",
            "NatsServerNotFound", "NatsUnreachable", "NestingTooDeep", "NoOptions", "NotAuthorized",
            "OversizedMessage", "ProtocolError", "QueueFull", "ReverieError", "Supervisor", "Swarm",
            "SwarmConfig", "SwarmNotRunning", "SwarmStatus", "TaskTimeout", "TaskTooLarge", "connect",
            "find_nats_server", "handler", "load_config", "parse_config", "serve_agent"}
    assert kept <= set(reverie.runtime.__all__)
    assert inspect.isclass(reverie.runtime.Agent) and callable(reverie.runtime.connect)
