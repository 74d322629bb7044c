"""``POST /api/v1/lineage``: OpenLineage events from any producer (Airflow, Spark, dbt,
the ``openlineage-python`` client), merged into headrace's lineage graph as external
jobs and datasets; and the routes that read that graph back.

An event is checked before anything is written: a RunEvent needs ``eventTime`` (ISO
8601), ``producer``, ``schemaURL``, ``run.runId`` (a UUID) and ``job`` (namespace and
name); a JobEvent has no run; a DatasetEvent names one ``dataset``. Facets are kept as
sent. Bodies may be gzip-compressed (the client's ``compression: gzip``); they are
limited to 1 MiB once decompressed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME = Field(min_length=1, max_length=500)
EventType = Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# Field names are OpenLineage's own (camelCase).


class DatasetIn(_Open):
    namespace: str = NAME
    name: str = NAME
    facets: dict[str, Any] | None = None
    inputFacets: dict[str, Any] | None = None
    outputFacets: dict[str, Any] | None = None


class JobIn(_Open):
    namespace: str = NAME
    name: str = NAME
    facets: dict[str, Any] | None = None


class RunIn(_Open):
    runId: str = Field(description="A UUID")
    facets: dict[str, Any] | None = None

    @field_validator("runId")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value)
        except ValueError as exc:
            raise ValueError(f"runId {value!r} is not a UUID") from exc
        return value


class LineageEventIn(_Open):
    """A RunEvent (``run`` and ``job``), a JobEvent (``job`` only) or a DatasetEvent
    (``dataset`` only), as the OpenLineage spec defines them."""

    eventTime: str = Field(description="ISO 8601, with a time zone")
    producer: str = Field(min_length=1, max_length=1000)
    schemaURL: str = Field(min_length=1, max_length=1000)
    eventType: EventType | None = None
    run: RunIn | None = None
    job: JobIn | None = None
    dataset: DatasetIn | None = None
    inputs: list[DatasetIn] = Field(default_factory=list, max_length=1000)
    outputs: list[DatasetIn] = Field(default_factory=list, max_length=1000)

    @field_validator("eventTime")
    @classmethod
    def _time(cls, value: str) -> str:
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"eventTime {value!r} is not an ISO 8601 time") from exc
        if stamp.tzinfo is None:
            raise ValueError(f"eventTime {value!r} has no time zone")
        return value

    def kind(self) -> str:
        """Which of the three event kinds this is; ValueError when it is none of them."""
        if self.job is not None and self.dataset is None:
            return "run" if self.run is not None else "job"
        if self.dataset is not None and self.job is None and self.run is None:
            return "dataset"
        raise ValueError(
            "an event names a job (a RunEvent with run, or a JobEvent) or one dataset "
            "(a DatasetEvent), not both or neither"
        )


__all__ = ["DatasetIn", "JobIn", "LineageEventIn", "RunIn"]
