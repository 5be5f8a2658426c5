"""The offline code reasoner: program repair by search, steered by the sandbox critic's reports.

It never runs code itself. It reads the failing tests, their messages and the frames in
editable files from the critics' `test_failed` reasons of earlier rounds (round 1 has none: it
ranks lines statically), proposes K small mutations per round from `repair`'s catalogue, and
never proposes a file set it proposed before. Deterministic for the same task, history and seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from reverie.protocol import Edit, Patch, Reason, RoundTrace, Task, artifact_of

from ..reasoners.base import Proposal, Reasoner, RoundState
from .patch import PatchFailed, apply_edits, unified_diff
from .repair import RepairSearch, fingerprint
from .task import CodeInput, parse_code
from .testout import Failure

__all__ = ["OfflineCodeReasoner", "failures_in", "tried_in"]


def failures_in(history: Sequence[RoundTrace]) -> list[Failure]:
    """The failing tests the critics reported on earlier rounds, newest round first."""
    out = []
    for rnd in reversed(history):
        for judged in rnd.candidates:
            for verdict in judged.verdicts:
                out += [Failure(test=r.ops[0] if r.ops else "", message=r.text, frames=r.where)
                        for r in verdict.reasons if r.code == "test_failed"]
    return out


def tried_in(task: CodeInput, history: Sequence[RoundTrace]) -> set[str]:
    """Fingerprints of every file set proposed before (and of the task's own files)."""
    tried = {fingerprint(task.files)}
    for rnd in history:
        for judged in rnd.candidates:
            art = artifact_of(judged.candidate)
            if isinstance(art, Patch):
                try:
                    tried.add(fingerprint(apply_edits(task.files, art.edits)))
                except PatchFailed:
                    continue
    return tried


class OfflineCodeReasoner(Reasoner):
    kinds: ClassVar[frozenset[str]] = frozenset({"code"})

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    async def propose(
        self, task: Task, round: int, k: int, history: Sequence[RoundTrace],
        lessons: Sequence[Reason] = (), *, state: RoundState | None = None,
    ) -> list[Proposal]:
        code = parse_code(task.input)
        failures = failures_in(history)
        search = RepairSearch(seed=self.seed)
        found = search.propose(code.files, code.editable_paths, failures, k=k, tried=tried_in(code, history),
                               lessons=[f"{r.code}: {r.text}" for r in lessons])
        proposals = []
        for m in found:
            after = {**code.files, m.path: m.new_source}
            why = (f"{m.kind} mutation at {m.path}:{m.line}, localised from "
                   + (f"{len({f.test for f in failures})} failing test(s)" if failures else "a static ranking "
                      "(no test output yet)"))
            proposals.append(Proposal(
                artifact=Patch(edits=(Edit(path=m.path, replace=m.new_source),)),
                text=unified_diff(code.files, after), rationale=f"{m.description}; {why}"))
        return proposals
