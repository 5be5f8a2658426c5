"""Change plans over a graph of operations (`deploy/tasks/*.json`): the first domain."""

from __future__ import annotations

from typing import ClassVar

from reverie.protocol import Artifact, Steps, Task

from ..plans.spec import PlanSpec, PlanSpecError, parse_spec, spec_features
from .base import Domain, DomainInputError

__all__ = ["PlanDomain"]


class PlanDomain(Domain):
    kind: ClassVar[str] = "plan"
    artifact: ClassVar[tuple[type[Artifact], ...]] = (Steps,)

    def parse(self, task: Task) -> PlanSpec:
        try:
            return parse_spec(task.input)
        except PlanSpecError as exc:
            raise DomainInputError(self.kind, exc.path, exc.detail) from None

    def features(self, task: Task) -> frozenset[str]:
        return spec_features(self.parse(task))
