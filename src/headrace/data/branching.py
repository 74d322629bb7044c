"""Branch operations with the gates that guard a merge.

A merge gate looks at the versions about to move and returns the problems that forbid
the merge. Areas register gates here (the quality area refuses versions whose
error-severity checks failed); a merge runs every registered gate.
"""

from __future__ import annotations

from collections.abc import Sequence

from headrace.runtime.identity import actor
from headrace.runtime.workspace import Workspace
from headrace.store.branches import BranchRecord, HeadMove, MergeGate, MergeResult

#: Gates every merge runs, in order. Append to register one.
MERGE_GATES: list[MergeGate] = []


def failed_checks_gate(ws: Workspace) -> MergeGate:
    """Refuses versions with a failed error-severity check (unless a person released them)."""

    def gate(moves: Sequence[HeadMove]) -> list[str]:
        failed = ws.store.quality.failed_errors(m.new_version_id for m in moves)
        return [
            f"{m.asset}{f'[{m.partition}]' if m.partition else ''} version "
            f"{m.new_version_id[:16]} failed error checks: {', '.join(failed[m.new_version_id])}"
            for m in moves
            if m.new_version_id in failed
        ]

    return gate


def create_branch(ws: Workspace, name: str, *, from_branch: str = "main") -> BranchRecord:
    return ws.store.branches.create(name, from_branch=from_branch, actor=actor())


def delete_branch(ws: Workspace, name: str) -> None:
    ws.store.branches.delete(name, actor=actor())


def merge(
    ws: Workspace,
    source: str,
    into: str = "main",
    *,
    dry_run: bool = False,
    gates: Sequence[MergeGate] | None = None,
) -> MergeResult:
    """Merge ``source`` into ``into`` once every gate passes; see ``BranchRepository.merge``."""
    chosen = [failed_checks_gate(ws), *(MERGE_GATES if gates is None else gates)]

    def gate(moves: Sequence[HeadMove]) -> list[str]:
        problems: list[str] = []
        for check in chosen:
            problems.extend(check(moves))
        return problems

    return ws.store.branches.merge(source, into, dry_run=dry_run, actor=actor(), gate=gate)
