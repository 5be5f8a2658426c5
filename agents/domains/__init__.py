"""Task domains: what a dreamer dreams about. `plan`, `code` and `text` ship; a config adds its
own (`domains = {"invoice" = "mypkg.domains:Invoice"}` in a dreamer's options)."""

from __future__ import annotations

import importlib

from .base import Domain, DomainInputError
from .code import CodeDomain
from .plan import PlanDomain
from .text import TextDomain

__all__ = ["BUILTIN_DOMAINS", "CodeDomain", "Domain", "DomainInputError", "PlanDomain", "TextDomain", "load_domains"]

BUILTIN_DOMAINS: dict[str, type[Domain]] = {"plan": PlanDomain, "code": CodeDomain, "text": TextDomain}


def load_domains(extra: dict[str, str]) -> dict[str, Domain]:
    """The built-in domains and a config's own (`kind -> module:Class`), one instance each.
    Raises ImportError, AttributeError or TypeError for a reference that is not a Domain."""
    classes: dict[str, type[Domain]] = dict(BUILTIN_DOMAINS)
    for kind, target in extra.items():
        module_name, sep, attr = target.partition(":")
        if not sep:
            raise TypeError(f"domain {kind!r}: expected 'module:Class', got {target!r}")
        cls = getattr(importlib.import_module(module_name), attr)
        if not (isinstance(cls, type) and issubclass(cls, Domain)):
            raise TypeError(f"domain {kind!r}: {target} is not a subclass of reverie.agents.domains.Domain")
        classes[kind] = cls
    return {kind: cls() for kind, cls in classes.items()}
