"""Testing data like code: re-run assets' checks on stored versions.

``check_asset`` re-validates an asset's versions without re-materializing them;
``test_selection`` runs the checks of a selection against a branch's current versions
(for CI, with a JUnit XML report).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headrace.core.checks import Suite
from headrace.core.selection import select
from headrace.orchestration.step import InputRef, load_reference
from headrace.quality.engine import validate
from headrace.quality.results import ValidationReport
from headrace.runtime.reading import read_version
from headrace.runtime.workspace import Workspace
from headrace.store.errors import VersionNotFoundError
from headrace.store.records import VersionRecord


@dataclass(frozen=True, kw_only=True)
class CheckOutcome:
    version: VersionRecord
    report: ValidationReport


@dataclass(frozen=True, kw_only=True)
class CheckRun:
    branch: str
    outcomes: list[CheckOutcome] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)  # assets with checks but no version

    @property
    def success(self) -> bool:
        return all(o.report.success for o in self.outcomes)

    @property
    def errors(self) -> int:
        return sum(len(o.report.errors) for o in self.outcomes)

    @property
    def checks(self) -> int:
        return sum(len(o.report.results) for o in self.outcomes)


def check_inputs(
    ws: Workspace, version: VersionRecord, suite: Suite, branch: str
) -> dict[str, Any]:
    """What a version's checks need besides its data, from the store: the referenced
    assets' versions on ``branch``, each anomaly check's history before the version,
    and the schema of the version before it."""
    references = {}
    for asset, columns in suite.references.items():
        if asset == version.asset:
            continue
        heads = sorted(
            ws.store.versions.heads(branch, [asset]).values(), key=lambda v: v.partition or ""
        )
        if not heads:
            raise VersionNotFoundError(
                f"asset {version.asset!r}: a references check reads asset {asset!r}, which "
                f"has no version on branch {branch!r}",
                asset=asset,
            )
        refs = tuple(InputRef(v.id, v.blob, v.format, v.flavor, v.partition) for v in heads)
        references[asset] = load_reference(ws.blobs, asset, tuple(sorted(columns)), refs)
    anomalies = [c for c in suite.checks if c.kind == "anomaly"]
    history = ws.store.quality.metric_history(
        version.asset,
        [c.name for c in anomalies],
        before=version.created_at,
        exclude=version.id,
        limit=max((c.window + 1 for c in anomalies), default=1),
    )
    previous = ws.store.versions.previous(version)
    return {
        "references": references,
        "history": history,
        "previous_schema": previous.schema if previous is not None else None,
    }


def _validate_version(
    ws: Workspace, version: VersionRecord, suite: Suite, branch: str
) -> ValidationReport:
    if version.format != "parquet":
        raise VersionNotFoundError(
            f"asset {version.asset!r} version {version.id[:16]} is not a table; checks need one",
            asset=version.asset,
        )
    report = validate(
        read_version(ws, version, "polars"), suite, **check_inputs(ws, version, suite, branch)
    )
    ws.store.quality.record(version, [dict(r.__dict__) for r in report.results], at=time.time())
    return report


def check_asset(
    ws: Workspace, asset: str, *, version: str | None = None, branch: str = "main"
) -> list[CheckOutcome]:
    """Re-run ``asset``'s checks on one version, or on every partition's head of a branch,
    and store the results (without re-materializing anything)."""
    spec = ws.graph.specs.get(asset)
    if spec is None:
        from headrace.core.errors import SelectionError
        from headrace.core.graph import suggest

        raise SelectionError(f"unknown asset {asset!r}" + suggest(asset, ws.graph.specs))
    if not spec.checks:
        from headrace.core.checks import CheckDefinitionError

        raise CheckDefinitionError(f"asset {asset!r} declares no checks", check=None)
    suite = Suite(asset, spec.checks)
    if version is not None:
        record = ws.store.versions.get(version)
        if record.asset != asset:
            raise VersionNotFoundError(
                f"version {version} belongs to asset {record.asset!r}, not {asset!r}", asset=asset
            )
        records = [record]
    else:
        heads = ws.store.versions.heads(branch, [asset])
        records = sorted(heads.values(), key=lambda v: v.partition or "")
        if not records:
            raise VersionNotFoundError(
                f"asset {asset!r} has no version on branch {branch!r}", asset=asset
            )
    return [
        CheckOutcome(version=r, report=_validate_version(ws, r, suite, branch)) for r in records
    ]


def check_selection(
    ws: Workspace, selection: str | None = None, *, branch: str = "main"
) -> CheckRun:
    """The checks of every selected asset, on the branch's current versions."""
    outcomes: list[CheckOutcome] = []
    untested: list[str] = []
    heads = ws.store.versions.heads(branch)
    for name in select(ws.graph, selection):
        spec = ws.graph[name]
        if not spec.checks:
            continue
        records = sorted(
            (v for (a, _), v in heads.items() if a == name), key=lambda v: v.partition or ""
        )
        if not records:
            untested.append(name)
            continue
        suite = Suite(name, spec.checks)
        outcomes.extend(
            CheckOutcome(version=r, report=_validate_version(ws, r, suite, branch)) for r in records
        )
    return CheckRun(branch=branch, outcomes=outcomes, untested=untested)


def write_junit(run: CheckRun, path: Path | str) -> None:
    """A JUnit XML report: one test case per check and version, so any CI shows them."""
    suites = ET.Element(
        "testsuites", name="headrace", tests=str(run.checks), failures=str(run.errors)
    )
    for outcome in run.outcomes:
        version = outcome.version
        label = version.asset + (f"[{version.partition}]" if version.partition else "")
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=label,
            tests=str(len(outcome.report.results)),
            failures=str(len(outcome.report.errors)),
            time=f"{outcome.report.seconds:.3f}",
        )
        ET.SubElement(
            ET.SubElement(suite, "properties"), "property", name="version", value=version.id
        )
        for result in outcome.report.results:
            case = ET.SubElement(suite, "testcase", classname=label, name=result.name)
            if result.passed:
                continue
            detail = f"{result.message}\nexpected: {result.threshold}\nsample: {result.sample[:3]}"
            if result.severity == "error":
                failure = ET.SubElement(case, "failure", message=result.message, type=result.kind)
                failure.text = detail
            else:
                ET.SubElement(case, "system-out").text = f"warning: {detail}"
    for name in run.untested:
        suite = ET.SubElement(suites, "testsuite", name=name, tests="1", failures="0")
        case = ET.SubElement(suite, "testcase", classname=name, name="has a version")
        ET.SubElement(case, "skipped", message=f"no version on branch {run.branch}")
    ET.ElementTree(suites).write(str(path), encoding="utf-8", xml_declaration=True)
