"""OpenLineage RunEvents for headrace runs and steps, as plain JSON-ready dicts.

The event model (docs/openlineage.md):

- A headrace run is one OpenLineage run of the job ``<project>``; each asset step is one
  run of the job ``<project>.<asset>`` whose ``parent`` facet points at the run's. Both
  live in the namespace ``headrace://<project>``, so jobs are the same from one run to
  the next and lineage tools group their runs.
- An asset is the dataset ``<branch>/<asset>`` in that namespace. A partition is not a
  separate dataset: it is named by the dataset's ``subset`` facet (a partition
  condition), and the partition's version by the ``version`` facet.
- Run ids are UUIDs derived (uuid5) from the headrace run id and step key, so the START
  and the COMPLETE/FAIL of a step share one ``runId`` without any state.

Everything here is pure: no I/O, no OpenLineage client.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from headrace.core.observers import RunInfo, StepEvent, VersionRef

SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA_URL = f"{SPEC_URL}#/$defs/RunEvent"

#: The facet schemas used, as ``facet class -> schema $id``: the versions published with
#: the OpenLineage spec 2-0-2 (and used by openlineage-python's generated facets).
_FACET_SCHEMAS = {
    "DatasetVersionDatasetFacet": "1-0-1/DatasetVersionDatasetFacet.json",
    "DocumentationJobFacet": "1-1-0/DocumentationJobFacet.json",
    "ErrorMessageRunFacet": "1-0-1/ErrorMessageRunFacet.json",
    "ExecutionParametersRunFacet": "1-0-0/ExecutionParametersRunFacet.json",
    "InputStatisticsInputDatasetFacet": "1-0-0/InputStatisticsInputDatasetFacet.json",
    "InputSubsetInputDatasetFacet": "1-0-0/BaseSubsetDatasetFacet.json",
    "JobTypeJobFacet": "2-0-4/JobTypeJobFacet.json",
    "OutputStatisticsOutputDatasetFacet": "1-0-2/OutputStatisticsOutputDatasetFacet.json",
    "OutputSubsetOutputDatasetFacet": "1-0-0/BaseSubsetDatasetFacet.json",
    "ParentRunFacet": "1-2-0/ParentRunFacet.json",
    "ProcessingEngineRunFacet": "1-1-1/ProcessingEngineRunFacet.json",
    "SchemaDatasetFacet": "1-2-0/SchemaDatasetFacet.json",
    "TagsRunFacet": "1-0-0/TagsRunFacet.json",
}

#: Fixed namespace of the uuid5 run ids: the same headrace run always maps to the same ids.
_RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "headrace:openlineage:run")

#: Run-level event types by headrace run status.
_RUN_END_TYPES = {"success": "COMPLETE", "failed": "FAIL", "canceled": "ABORT"}


def headrace_version() -> str:
    # The root package is always loaded (it is this package's parent); importing it by
    # name would make lineage depend, for import-linter, on everything it re-exports.
    return str(getattr(sys.modules.get("headrace"), "__version__", "unknown"))


def facet_schema_url(facet: str) -> str:
    """The ``_schemaURL`` of a standard facet class, e.g. ``SchemaDatasetFacet``."""
    return f"https://openlineage.io/spec/facets/{_FACET_SCHEMAS[facet]}#/$defs/{facet}"


def event_time(at: float) -> str:
    """UNIX seconds as an ISO 8601 timestamp in UTC (``2024-05-01T12:00:00.123456+00:00``)."""
    return datetime.fromtimestamp(at, tz=UTC).isoformat()


def namespace(project: str) -> str:
    """The job and dataset namespace of a project: ``headrace://<project>``."""
    return "headrace://" + quote(project, safe="-_.~")


def run_uuid(run_id: str, step_key: str | None = None) -> str:
    """The OpenLineage ``runId`` of a headrace run, or of one of its steps."""
    name = run_id if step_key is None else f"{run_id}/{step_key}"
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, name))


def dataset_name(branch: str, asset: str) -> str:
    return f"{branch}/{asset}"


class EventBuilder:
    """Builds RunEvents; every facet names ``producer``."""

    def __init__(self, producer: str) -> None:
        self.producer = producer

    # -- events -----------------------------------------------------------------------

    def run_started(self, run: RunInfo) -> dict[str, Any]:
        return self._event("START", run.started_at, self._run(run), self._run_job(run))

    def run_finished(
        self, run: RunInfo, status: str, at: float, error: str | None
    ) -> dict[str, Any]:
        """COMPLETE, FAIL or ABORT (``canceled``) of the run-level job."""
        event_type = _RUN_END_TYPES.get(status, "FAIL")
        extra = {}
        if event_type == "FAIL":
            extra["errorMessage"] = self._error(error or f"run {status}", None)
        return self._event(event_type, at, self._run(run, extra), self._run_job(run))

    def step(self, event: StepEvent, event_type: str) -> dict[str, Any]:
        """A step's START, RUNNING, COMPLETE or FAIL.

        COMPLETE carries the output version (schema, version, row count); START, RUNNING
        and FAIL name the output dataset only.
        """
        run = event.run
        extra: dict[str, Any] = {}
        if event_type == "FAIL":
            extra["errorMessage"] = self._error(
                event.error or f"step {event.step_key} failed", event.traceback
            )
        run_facets = {
            "parent": self._parent(run),
            "tags": self._tags(
                ("headrace.run_id", run.run_id),
                ("headrace.step", event.step_key),
                ("headrace.branch", run.branch),
                ("headrace.partition", event.partition),
            ),
            "processing_engine": self._engine(),
            **extra,
        }
        job_facets: dict[str, Any] = {"jobType": self._job_type("ASSET")}
        if event.description:
            job_facets["documentation"] = self._facet(
                "DocumentationJobFacet", description=event.description
            )
        job = {
            "namespace": namespace(run.project),
            "name": f"{run.project}.{event.asset}",
            "facets": job_facets,
        }
        output = event.output if event_type == "COMPLETE" else None
        if output is None:
            output = VersionRef(asset=event.asset, partition=event.partition, version_id="")
        return self._event(
            event_type,
            event.at,
            {"runId": run_uuid(run.run_id, event.step_key), "facets": run_facets},
            job,
            inputs=self._inputs(run, event.inputs),
            outputs=[self._output(run, output)],
        )

    # -- parts ------------------------------------------------------------------------

    def _event(
        self,
        event_type: str,
        at: float,
        run: dict[str, Any],
        job: dict[str, Any],
        *,
        inputs: list[dict[str, Any]] | None = None,
        outputs: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return {
            "eventType": event_type,
            "eventTime": event_time(at),
            "producer": self.producer,
            "schemaURL": RUN_EVENT_SCHEMA_URL,
            "run": run,
            "job": job,
            "inputs": inputs or [],
            "outputs": outputs or [],
        }

    def _facet(self, facet: str, **fields: Any) -> dict[str, Any]:
        return {"_producer": self.producer, "_schemaURL": facet_schema_url(facet), **fields}

    def _run(self, run: RunInfo, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        facets: dict[str, Any] = {
            "tags": self._tags(
                ("headrace.run_id", run.run_id),
                ("headrace.branch", run.branch),
                ("headrace.selection", run.selection),
            ),
            "processing_engine": self._engine(),
        }
        if run.params:
            parameters = [
                {"key": key, "value": _param_value(value)} for key, value in run.params.items()
            ]
            facets["executionParameters"] = self._facet(
                "ExecutionParametersRunFacet", parameters=parameters
            )
        return {"runId": run_uuid(run.run_id), "facets": {**facets, **(extra or {})}}

    def _run_job(self, run: RunInfo) -> dict[str, Any]:
        return {
            "namespace": namespace(run.project),
            "name": run.project,
            "facets": {"jobType": self._job_type("JOB")},
        }

    def _parent(self, run: RunInfo) -> dict[str, Any]:
        parent_run = {"runId": run_uuid(run.run_id)}
        parent_job = {"namespace": namespace(run.project), "name": run.project}
        return self._facet(
            "ParentRunFacet",
            run=parent_run,
            job=parent_job,
            root={"run": dict(parent_run), "job": dict(parent_job)},
        )

    def _job_type(self, job_type: str) -> dict[str, Any]:
        return self._facet(
            "JobTypeJobFacet", processingType="BATCH", integration="HEADRACE", jobType=job_type
        )

    def _engine(self) -> dict[str, Any]:
        return self._facet("ProcessingEngineRunFacet", name="headrace", version=headrace_version())

    def _tags(self, *pairs: tuple[str, str | None]) -> dict[str, Any]:
        tags = [
            {"key": key, "value": value, "source": "HEADRACE"}
            for key, value in pairs
            if value is not None
        ]
        return self._facet("TagsRunFacet", tags=tags)

    def _error(self, message: str, stack: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"message": message, "programmingLanguage": "python"}
        if stack:
            fields["stackTrace"] = stack
        return self._facet("ErrorMessageRunFacet", **fields)

    def _inputs(self, run: RunInfo, refs: Sequence[VersionRef]) -> list[dict[str, Any]]:
        """One input dataset per asset; the partitions read are its ``subset``."""
        datasets = []
        for asset, versions in _by_asset(refs):
            dataset = self._dataset(run, asset, versions)
            input_facets: dict[str, Any] = {}
            rows = [v.row_count for v in versions]
            if rows and all(r is not None for r in rows):
                input_facets["inputStatistics"] = self._facet(
                    "InputStatisticsInputDatasetFacet", rowCount=sum(r or 0 for r in rows)
                )
            partitions = _partitions(versions)
            if partitions:
                input_facets["subset"] = self._facet(
                    "InputSubsetInputDatasetFacet", inputCondition=partitions
                )
            if input_facets:
                dataset["inputFacets"] = input_facets
            datasets.append(dataset)
        return datasets

    def _output(self, run: RunInfo, ref: VersionRef) -> dict[str, Any]:
        dataset = self._dataset(run, ref.asset, [ref])
        output_facets: dict[str, Any] = {}
        if ref.row_count is not None:
            output_facets["outputStatistics"] = self._facet(
                "OutputStatisticsOutputDatasetFacet", rowCount=ref.row_count
            )
        partitions = _partitions([ref])
        if partitions:
            output_facets["subset"] = self._facet(
                "OutputSubsetOutputDatasetFacet", outputCondition=partitions
            )
        if output_facets:
            dataset["outputFacets"] = output_facets
        return dataset

    def _dataset(self, run: RunInfo, asset: str, versions: Sequence[VersionRef]) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        schema = next((v.schema for v in versions if v.schema is not None), None)
        if schema is not None:
            facets["schema"] = self._facet("SchemaDatasetFacet", fields=schema_fields(schema))
        ids = {v.version_id for v in versions if v.version_id}
        if len(ids) == 1:
            facets["version"] = self._facet("DatasetVersionDatasetFacet", datasetVersion=ids.pop())
        dataset: dict[str, Any] = {
            "namespace": namespace(run.project),
            "name": dataset_name(run.branch, asset),
        }
        if facets:
            dataset["facets"] = facets
        return dataset


def _by_asset(refs: Iterable[VersionRef]) -> list[tuple[str, list[VersionRef]]]:
    grouped: dict[str, list[VersionRef]] = {}
    for ref in refs:
        grouped.setdefault(ref.asset, []).append(ref)
    return list(grouped.items())


def _partitions(refs: Sequence[VersionRef]) -> dict[str, Any] | None:
    keys = list(dict.fromkeys(r.partition for r in refs if r.partition is not None))
    if not keys:
        return None
    return {
        "type": "partition",
        "partitions": [{"identifier": key, "dimensions": {"partition": key}} for key in keys],
    }


def _param_value(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


# -- Arrow types --------------------------------------------------------------------------

_STRUCT = re.compile(r"^struct<(?P<body>.*)>$", re.DOTALL)


def schema_fields(schema: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """The ``schema`` facet's fields for ``[[column, arrow type], ...]``.

    Types are Arrow's own names (``int64``, ``timestamp[us, tz=UTC]``, ``list<item:
    double>``), the data's real types; a ``struct<...>`` column is typed ``struct`` with
    its members as nested fields.
    """
    return [
        _field(name, arrow_type, position) for position, (name, arrow_type) in enumerate(schema, 1)
    ]


def _field(name: str, arrow_type: str, position: int) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": arrow_type, "ordinal_position": position}
    match = _STRUCT.match(arrow_type)
    members = _struct_members(match["body"]) if match else None
    if members is not None:
        field["type"] = "struct"
        field["fields"] = [_field(m, m_type, i) for i, (m, m_type) in enumerate(members, 1)]
    return field


def _struct_members(body: str) -> list[tuple[str, str]] | None:
    """``a: int64, b: list<item: string>`` -> members; None when it does not parse."""
    members = []
    for part in _split_top_level(body):
        name, sep, member_type = part.partition(": ")
        if not sep or not member_type:
            return None
        members.append((name, member_type))
    return members


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "<[(":
            depth += 1
        elif char in ">])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts
