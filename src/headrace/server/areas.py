"""The ``/api/v1`` routes over every area of headrace: assets and versions, branches and
merges, runs with their steps and logs, check results and quarantine, experiments and
tracked runs, models with versions, aliases and lifecycle, deployments and their
prediction logs, monitors and alerts.

Each route checks the caller's role first; each mutating route is audited (in the same
transaction as its change where it has one) and attributes the change to the caller.
Columns an asset declares ``personal`` are masked (``"***"``) in previews, diffs,
failing-row samples and prediction logs unless the caller holds ``read_personal``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from headrace.core.automation import SERVER_PIPELINE
from headrace.core.governance import allows, branch_permission
from headrace.runtime.identity import acting_as
from headrace.runtime.workspace import Workspace
from headrace.server.context import ApiError, Gate, json_response, page_of
from headrace.server.deps import Caller, Paging
from headrace.store.errors import RunNotFoundError
from headrace.store.governance import Principal

MASK = "***"
PREVIEW_MAX = 1000


Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BranchIn(_Strict):
    name: Name
    from_branch: Name = "main"


class MergeIn(_Strict):
    into: Name = "main"
    dry_run: bool = False


class RunIn(_Strict):
    select: str | None = Field(None, max_length=2000, description="An asset selection")
    params: dict[str, Any] = Field(default_factory=dict)
    partitions: list[str] | None = Field(None, max_length=10_000)
    exclude: str | None = Field(None, max_length=2000)
    branch: Name = "main"
    force: bool = False
    missing_only: bool = False


class AliasIn(_Strict):
    version: int = Field(ge=1)
    reason: str | None = Field(None, max_length=2000)
    override: bool = Field(
        False,
        description="Move a guarded alias past its policy's refusal (needs a reason and "
        "the override_policy permission: maintainer or admin)",
    )


class ModelVersionIn(_Strict):
    blob: str = Field(pattern=r"^[0-9a-f]{64}$", description="The digest PUT /blobs gave")
    signature: dict[str, Any] | None = None
    run_id: str | None = Field(None, max_length=64)
    data_versions: list[str] = Field(default_factory=list, max_length=10_000)
    description: str | None = Field(None, max_length=5000)


class PromoteIn(_Strict):
    to: Name = "champion"
    version: int | None = Field(None, ge=1, description="Default: the challenger, else newest")
    require_approval: bool = False
    reason: str | None = Field(None, max_length=2000)


class QueueIn(_Strict):
    pipeline: Name
    partitions: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        None, max_length=10_000
    )
    priority: int = Field(0, ge=-1000, le=1000)


class DecisionIn(_Strict):
    alias: Name = "champion"
    reason: str | None = Field(None, max_length=2000)


class TransitionIn(_Strict):
    status: Literal["candidate", "approved", "production", "retired"]
    reason: str | None = Field(None, max_length=2000)


def _plain(record: Any) -> Any:
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return dataclasses.asdict(record)
    return record


def _masked(rows: list[dict[str, Any]], personal: set[str]) -> list[dict[str, Any]]:
    if not personal:
        return rows
    return [{k: (MASK if k in personal else v) for k, v in row.items()} for row in rows]


def areas_router(ws: Workspace, gate: Gate) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    errors: dict[int | str, dict[str, Any]] = {
        401: {"description": "No token, or a token that is not valid"},
        403: {"description": "The role lacks the permission (named in the answer)"},
        404: {"description": "Not found (named in the answer)"},
    }

    def personal_of(asset: str, who: Principal) -> set[str]:
        """The asset's personal columns the caller may not see."""
        if allows(who.role(gate.namespace), "read_personal"):
            return set()
        try:
            spec = ws.graph.specs.get(asset)
        except Exception:  # a project that does not load: mask nothing we cannot name
            return set()
        return set(spec.personal) if spec is not None else set()

    def graph_or_error() -> Any:
        try:
            return ws.graph
        except Exception as exc:
            raise ApiError(503, "PROJECT_UNAVAILABLE", f"the project does not load: {exc}") from exc

    # -- assets and versions ----------------------------------------------------------

    @router.get("/assets", tags=["data"], responses=errors)
    def list_assets(
        who: Caller,
        page: Paging,
        branch: Annotated[str, Query(max_length=200)] = "main",
        select: Annotated[
            str | None, Query(max_length=2000, description="An asset selection (+features)")
        ] = None,
    ) -> Response:
        from headrace.core.selection import select as chosen

        gate.require(who, "read")
        limit, offset = page
        graph = graph_or_error()
        names, following = page_of(list(chosen(graph, select)), limit, offset)
        heads = ws.store.versions.heads(branch, names)
        assets = []
        for name in names:
            spec = graph.specs[name]
            mine = {part or "": v.id for (asset, part), v in heads.items() if asset == name}
            assets.append(
                {
                    "name": name,
                    "description": spec.description,
                    "group": spec.group,
                    "upstream": list(spec.upstream_names),
                    "partitioned": spec.partitions is not None,
                    "partitions": None
                    if spec.partitions is None
                    else type(spec.partitions).__name__.replace("Partitions", "").lower(),
                    "tags": list(spec.tags),
                    "owner": spec.owner,
                    "primary_key": list(spec.primary_key),
                    "personal": list(spec.personal),
                    "checks": [c.name for c in spec.checks],
                    "heads": mine,
                }
            )
        return json_response({"assets": assets, "next_page_token": following})

    @router.get("/assets/{asset}/versions", tags=["data"], responses=errors)
    def asset_versions(
        asset: str,
        who: Caller,
        page: Paging,
        partition: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        gate.require(who, "read")
        limit, offset = page
        versions = ws.store.versions.list(asset, partition=partition, limit=offset + limit + 1)
        return _paged("versions", [_version_json(v) for v in versions], page)

    @router.get("/versions/{version_id}", tags=["data"], responses=errors)
    def get_version(version_id: str, who: Caller) -> Response:
        gate.require(who, "read")
        version = ws.store.versions.get(version_id)
        checks = ws.store.quality.results(version.id)
        hidden = personal_of(version.asset, who)
        return json_response(
            {
                **_version_json(version),
                "checks": [_check_json(c, hidden) for c in checks],
            }
        )

    @router.get("/versions/{version_id}/lineage", tags=["data"], responses=errors)
    def version_lineage(
        version_id: str,
        who: Caller,
        direction: Annotated[Literal["upstream", "downstream"], Query()] = "upstream",
        depth: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Response:
        """The version lineage tree: what made this version (upstream) or what it made
        (downstream), each node a version with the parameter it was read as."""
        from headrace.data.lineage import LineageNode, lineage_tree

        gate.require(who, "read")
        root = ws.store.versions.get(version_id)
        tree = lineage_tree(ws, root, upstream=direction == "upstream", depth=depth)

        def node_json(node: LineageNode) -> dict[str, Any]:
            return {
                "version": _version_json(node.version),
                "parameter": node.parameter,
                "repeated": node.repeated,
                "children": [node_json(child) for child in node.children],
            }

        return json_response(node_json(tree))

    @router.get("/versions/{version_id}/preview", tags=["data"], responses=errors)
    def preview(
        version_id: str, who: Caller, limit: Annotated[int, Query(ge=1, le=PREVIEW_MAX)] = 20
    ) -> Response:
        """The first rows of a table version (personal columns masked)."""
        gate.require(who, "read")
        version = ws.store.versions.get(version_id)
        if version.format != "parquet":
            raise ApiError(
                400,
                "BAD_REQUEST",
                f"version {version.id} of {version.asset} is "
                f"not a table ({version.format}); only tables have previews",
            )
        import pyarrow.parquet as pq

        with ws.blobs.open(version.blob) as handle:
            table = pq.ParquetFile(handle).iter_batches(batch_size=limit)
            batch = next(table, None)
        rows = [] if batch is None else batch.to_pylist()[:limit]
        hidden = personal_of(version.asset, who)
        return json_response(
            {
                "version_id": version.id,
                "asset": version.asset,
                "columns": [c[0] for c in version.schema or []],
                "masked": sorted(hidden & {c[0] for c in version.schema or []}),
                "rows": _masked(rows, hidden),
            }
        )

    @router.get("/assets/{asset}/data", tags=["data"], responses=errors)
    def asset_data(
        asset: str,
        who: Caller,
        branch: Annotated[str, Query(min_length=1, max_length=200)] = "main",
        partition: Annotated[str | None, Query(max_length=500)] = None,
        version: Annotated[str | None, Query(max_length=64)] = None,
        as_of: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        """An asset's value as ``hr.read`` gives it: a table as an Arrow IPC stream
        (personal columns masked; the flavor it was written in is in
        ``X-Headrace-Flavor``), any other value as JSON."""
        from headrace.data.versions import read

        gate.require(who, "read")
        value = read(
            ws, asset, partition=partition, branch=branch, version=version, as_of=as_of, as_="arrow"
        )
        import pyarrow as pa

        if isinstance(value, pa.Table):
            hidden = personal_of(asset, who) & set(value.column_names)
            for name in sorted(hidden):
                index = value.column_names.index(name)
                value = value.set_column(
                    index, pa.field(name, pa.string()), pa.array([MASK] * value.num_rows)
                )
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, value.schema) as writer:
                writer.write_table(value)
            flavor = _written_flavor(ws, asset, branch, version)
            return Response(
                sink.getvalue().to_pybytes(),
                media_type="application/vnd.apache.arrow.stream",
                headers={
                    "X-Headrace-Flavor": flavor,
                    "X-Headrace-Masked": ",".join(sorted(hidden)),
                },
            )
        try:
            return json_response({"value": value})
        except TypeError as exc:
            raise ApiError(
                400,
                "BAD_REQUEST",
                f"asset {asset!r} holds a value that is neither "
                f"a table nor JSON ({type(value).__name__}); read it in the "
                "workspace",
            ) from exc

    @router.get("/assets/{asset}/diff", tags=["data"], responses=errors)
    def diff(
        asset: str,
        who: Caller,
        old: Annotated[str, Query(min_length=1, max_length=200)],
        new: Annotated[str, Query(min_length=1, max_length=200)],
        sample: Annotated[int, Query(ge=0, le=100)] = 5,
        key: Annotated[
            str | None, Query(max_length=2000, description="Key column(s), comma-separated")
        ] = None,
    ) -> Response:
        """Two versions (or branches' heads) of a table compared: schema, counts and,
        with a primary key, the rows added, removed and changed (personal columns
        masked)."""
        from headrace.data.diff import diff_tables

        gate.require(who, "read")
        old_records = _side(ws, asset, old)
        new_records = _side(ws, asset, new)
        primary_key = (
            tuple(k.strip() for k in key.split(",") if k.strip())
            if key
            else (new_records[-1].primary_key or old_records[-1].primary_key)
        )
        local = getattr(ws.blobs, "path_of", None)
        if local is None:
            raise ApiError(
                400,
                "BAD_REQUEST",
                "diffs read the blob store's files; this workspace's blobs are not on a local disk",
            )
        result = diff_tables(
            [str(local(r.blob)) for r in old_records],
            [str(local(r.blob)) for r in new_records],
            primary_key=primary_key or None,
            sample=sample,
            name=asset,
        ).to_dict()
        hidden = personal_of(asset, who)
        for kind in ("added_sample", "removed_sample"):
            result[kind] = _masked(result[kind], hidden)
        for change in result["changed_sample"]:
            for part, values in change.items():
                if isinstance(values, dict):
                    change[part] = {k: (MASK if k in hidden else v) for k, v in values.items()}
        return json_response({"asset": asset, "old": old, "new": new, "diff": result})

    # -- branches ---------------------------------------------------------------------

    @router.get("/branches", tags=["data"], responses=errors)
    def list_branches(who: Caller, page: Paging) -> Response:
        gate.require(who, "read")
        return _paged("branches", [_plain(b) for b in ws.store.branches.list()], page)

    @router.post(
        "/branches",
        tags=["data"],
        status_code=201,
        responses=errors,
        openapi_extra={"x-audit-action": "branch.create", "x-permission": "write_branch"},
    )
    def create_branch(body: BranchIn, who: Caller) -> Response:
        from headrace.data.branching import create_branch as create

        with (
            gate.audited(who, "branch.create", body.name, branch_permission(body.name)),
            acting_as(who.name),
        ):
            record = create(ws, body.name, from_branch=body.from_branch)
        return json_response(_plain(record), 201)

    @router.delete(
        "/branches/{name}",
        tags=["data"],
        responses=errors,
        openapi_extra={"x-audit-action": "branch.delete", "x-permission": "write_branch"},
    )
    def delete_branch(name: str, who: Caller) -> Response:
        from headrace.data.branching import delete_branch as delete

        with gate.audited(who, "branch.delete", name, branch_permission(name)), acting_as(who.name):
            delete(ws, name)
        return json_response({"deleted": name})

    @router.post(
        "/branches/{name}/merge",
        tags=["data"],
        responses=errors,
        openapi_extra={"x-audit-action": "branch.merge", "x-permission": "read"},
    )
    def merge_branch(name: str, body: MergeIn, who: Caller) -> Response:
        """Merge ``name`` into ``into`` once every gate passes (failed error checks
        refuse it); merging into a protected branch (``main``) takes a maintainer."""
        from headrace.data.branching import merge

        permission = branch_permission(body.into) if not body.dry_run else "read"
        with (
            gate.audited(who, "branch.merge", f"{name}->{body.into}", permission) as ticket,
            acting_as(who.name),
        ):
            result = merge(ws, name, body.into, dry_run=body.dry_run)
            ticket.details = {"dry_run": body.dry_run}
        return json_response(_plain(result))

    @router.get("/branches/{name}/log", tags=["data"], responses=errors)
    def branch_log(name: str, who: Caller, page: Paging) -> Response:
        gate.require(who, "read")
        limit, offset = page
        events = ws.store.branches.log(branch=name, limit=offset + limit + 1)
        return _paged("events", [_plain(e) for e in events], page)

    @router.get("/branches/{name}/heads", tags=["data"], responses=errors)
    def branch_heads(
        name: str,
        who: Caller,
        page: Paging,
        asset: Annotated[list[str] | None, Query(max_length=1000)] = None,
    ) -> Response:
        """The versions a branch points at (every asset's, or only the ``asset``s named),
        one per asset and partition."""
        gate.require(who, "read")
        if not ws.store.branches.exists(name):
            raise ApiError(404, "NOT_FOUND", f"branch {name!r} does not exist")
        heads = ws.store.versions.heads(name, asset)
        ordered = [v for _, v in sorted(heads.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))]
        return _paged("versions", [_version_json(v) for v in ordered], page)

    @router.get("/log", tags=["data"], responses=errors)
    def head_log(
        who: Caller,
        page: Paging,
        branch: Annotated[str | None, Query(max_length=200)] = None,
        asset: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        """Every head move, newest first: what moved on which branch, when, by whom, from
        which run (``headrace log``)."""
        gate.require(who, "read")
        limit, offset = page
        events = ws.store.branches.log(branch=branch, asset=asset, limit=offset + limit + 1)
        return _paged("events", [_plain(e) for e in events], page)

    # -- runs -------------------------------------------------------------------------

    @router.get("/runs", tags=["runs"], responses=errors)
    def list_runs(
        who: Caller,
        page: Paging,
        status: Annotated[str | None, Query(max_length=32)] = None,
    ) -> Response:
        gate.require(who, "read")
        limit, offset = page
        found = ws.store.runs.list(limit=limit + 1, offset=offset, status=status)
        counts = ws.store.runs.step_counts(r.id for r in found[:limit])
        return json_response(
            {
                "runs": [{**_plain(r), "steps": counts.get(r.id, {})} for r in found[:limit]],
                "next_page_token": str(offset + limit) if len(found) > limit else None,
            }
        )

    @router.get("/runs/{run_id}", tags=["runs"], responses=errors)
    def get_run(run_id: str, who: Caller) -> Response:
        """A run with its steps, tracked values and models; a run the server queued
        that no worker has started yet answers ``queued``, with its place in the
        queue."""
        gate.require(who, "read")
        try:
            run = ws.store.runs.get(run_id)
        except RunNotFoundError:
            waiting = ws.store.queue.for_run(run_id)
            if waiting is None or len(run_id) != 32:
                raise
            return json_response(
                {
                    "id": run_id,
                    "status": "queued" if waiting.status in ("queued", "running") else "failed",
                    "selection": waiting.selection,
                    "branch": waiting.branch,
                    "error": waiting.error,
                    "queue": _plain(waiting),
                    "step_records": [],
                }
            )
        tracking = ws.store.tracking
        shown = _plain(run)
        again = ws.store.queue.for_run(run.id)
        if again is not None and _stale(run, again):  # queued to resume, not started yet
            shown.update(status="queued", queue=_plain(again))
        return json_response(
            {
                **shown,
                "step_records": [_plain(s) for s in ws.store.runs.steps(run.id)],
                "tracked": {
                    "params": tracking.params(run.id),
                    "metrics": tracking.metrics(run.id),
                    "tags": tracking.tags(run.id),
                },
                "models": [
                    {"name": v.name, "version": v.version}
                    for v in ws.store.registry.for_run(run.id)
                ],
            }
        )

    @router.get("/runs/{run_id}/logs", tags=["runs"], responses=errors)
    def run_logs(
        run_id: str,
        who: Caller,
        page: Paging,
        step: Annotated[str | None, Query(max_length=512)] = None,
    ) -> Response:
        gate.require(who, "read")
        run = ws.store.runs.get(run_id)
        return _paged("logs", [_plain(x) for x in ws.store.runs.logs(run.id, step)], page)

    @router.post(
        "/runs",
        tags=["runs"],
        status_code=202,
        responses=errors,
        openapi_extra={"x-audit-action": "run.start", "x-permission": "run"},
    )
    def start_run(body: RunIn, who: Caller) -> Response:
        """Check and plan a run of a selection, and queue it: a worker of the
        automation daemon (``headrace daemon``, started beside ``headrace server``)
        executes it. Answers at once (202) with the id the run will have: follow it with
        ``GET /runs/{id}`` (``queued``, then ``running``, then its end). A bad
        selection, param, partition or branch is refused here, not by the worker."""
        from headrace.core.ids import new_id
        from headrace.orchestration.service import plan_run

        permission = _run_permission(body.branch)
        with gate.audited(who, "run.start", body.select or "*", permission) as ticket:
            planned = plan_run(
                ws,
                body.select,
                params=body.params,
                partitions=body.partitions,
                branch=body.branch,
                missing_only=body.missing_only,
                exclude=body.exclude,
            )
            run_id = new_id()
            queued = ws.store.queue.enqueue(
                pipeline=SERVER_PIPELINE,
                selection=planned.expression,
                params=body.params,
                partitions=body.partitions,
                branch=body.branch,
                exclude=body.exclude,
                trigger="server",
                max_attempts=3,  # a lost worker or a lost branch race: again
                details={
                    "actor": who.name,
                    "force": body.force,
                    "missing_only": body.missing_only,
                },
                run_id=run_id,
            )
            ticket.details = {"run_id": run_id, "queue_id": queued, "branch": body.branch}
        return json_response({"run_id": run_id, "queue_id": queued, "status": "queued"}, 202)

    @router.post(
        "/runs/{run_id}/resume",
        tags=["runs"],
        status_code=202,
        responses=errors,
        openapi_extra={"x-audit-action": "run.resume", "x-permission": "run"},
    )
    def resume_run(run_id: str, who: Caller) -> Response:
        """Finish an interrupted or failed run without redoing its completed steps
        (``headrace runs resume``); answers once it has started again."""
        from headrace.orchestration.service import resumable

        try:
            run = ws.store.runs.get(run_id)
        except Exception:  # refused, and recorded as the failed resume of that id
            with gate.audited(who, "run.resume", run_id, "run"):
                raise
        permission = _run_permission(run.branch)
        with gate.audited(who, "run.resume", run.id, permission) as ticket:
            resumable(ws, run.id)  # refused here if it cannot be
            queued = ws.store.queue.enqueue(
                pipeline=SERVER_PIPELINE,
                selection=run.selection,
                branch=run.branch,
                trigger="server:resume",
                max_attempts=3,  # a lost worker or a lost branch race: again
                details={"actor": who.name, "resume": True},
                run_id=run.id,
            )
            ticket.details = {"run_id": run.id, "queue_id": queued, "branch": run.branch}
        return json_response({"run_id": run.id, "queue_id": queued, "status": "queued"}, 202)

    # -- checks and quarantine --------------------------------------------------------

    @router.get("/quarantine", tags=["quality"], responses=errors)
    def quarantine(
        who: Caller,
        page: Paging,
        status: Annotated[
            Literal["held", "released", "discarded", "all"], Query(description="all: any")
        ] = "held",
        branch: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        gate.require(who, "read")
        limit, offset = page
        held = ws.store.quality.quarantined(
            branch=branch, status=None if status == "all" else status, limit=offset + limit + 1
        )
        return _paged("quarantine", [_plain(q) for q in held], page)

    @router.post(
        "/quarantine/{version_id}/release",
        tags=["quality"],
        responses=errors,
        openapi_extra={
            "x-audit-action": "quarantine.release",
            "x-permission": "release_quarantine",
        },
    )
    def release(version_id: str, who: Caller) -> Response:
        from headrace.data.quarantine import release as do_release

        with (
            gate.audited(who, "quarantine.release", version_id, "release_quarantine"),
            acting_as(who.name),
        ):
            record = do_release(ws, version_id)
        return json_response(_plain(record))

    @router.post(
        "/quarantine/{version_id}/discard",
        tags=["quality"],
        responses=errors,
        openapi_extra={
            "x-audit-action": "quarantine.discard",
            "x-permission": "release_quarantine",
        },
    )
    def discard(version_id: str, who: Caller) -> Response:
        from headrace.data.quarantine import discard as do_discard

        with (
            gate.audited(who, "quarantine.discard", version_id, "release_quarantine"),
            acting_as(who.name),
        ):
            record = do_discard(ws, version_id)
        return json_response(_plain(record))

    # -- experiments and tracked runs -------------------------------------------------

    @router.get("/experiments", tags=["tracking"], responses=errors)
    def experiments(who: Caller, page: Paging) -> Response:
        gate.require(who, "read")
        counts = ws.store.tracking.run_counts()
        rows = [{**_plain(e), "runs": counts.get(e.id, 0)} for e in ws.store.tracking.experiments()]
        return _paged("experiments", rows, page)

    @router.get("/experiments/{name}/runs", tags=["tracking"], responses=errors)
    def experiment_runs(
        name: str,
        who: Caller,
        filter: Annotated[str | None, Query(max_length=5000)] = None,
        order_by: Annotated[str | None, Query(max_length=1000)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        page_token: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        """Tracked runs of an experiment matching a filter (headrace's search language)."""
        gate.require(who, "read")
        page = ws.store.tracking.search(
            experiments_=[name],
            filter=filter,
            order_by=order_by,
            max_results=limit,
            page_token=page_token,
        )
        return json_response(
            {"runs": [_plain(r) for r in page.runs], "next_page_token": page.next_page_token}
        )

    @router.get("/tracked-runs", tags=["tracking"], responses=errors)
    def tracked_runs(
        who: Caller,
        experiment: Annotated[list[str] | None, Query(max_length=100)] = None,
        filter: Annotated[str | None, Query(max_length=5000)] = None,
        order_by: Annotated[str | None, Query(max_length=1000)] = None,
        column: Annotated[list[str] | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        page_token: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        """Tracked runs of any experiments matching a filter, as ``hr.search_runs``;
        ``column`` (repeatable) limits what is loaded (``metrics.auc``, ``params.*``)."""
        gate.require(who, "read")
        page = ws.store.tracking.search(
            experiments_=experiment,
            filter=filter,
            order_by=order_by,
            max_results=limit,
            page_token=page_token,
            columns=column,
        )
        return json_response(
            {"runs": [_plain(r) for r in page.runs], "next_page_token": page.next_page_token}
        )

    # -- models -----------------------------------------------------------------------

    @router.get("/models", tags=["registry"], responses=errors)
    def models(who: Caller, page: Paging) -> Response:
        gate.require(who, "read")
        return _paged("models", ws.store.registry.names(), page)

    @router.get("/models/{name}/versions", tags=["registry"], responses=errors)
    def model_versions(name: str, who: Caller, page: Paging) -> Response:
        gate.require(who, "read")
        versions = [_model_version_json(v) for v in ws.store.registry.versions(name)]
        return _paged("versions", versions, page)

    @router.get("/models/{name}/events", tags=["registry"], responses=errors)
    def model_events(name: str, who: Caller, page: Paging) -> Response:
        gate.require(who, "read")
        limit, offset = page
        events = ws.store.registry.events(name, limit=offset + limit + 1)
        return _paged("events", [_plain(e) for e in events], page)

    @router.put(
        "/models/{name}/aliases/{alias}",
        tags=["registry"],
        responses=errors,
        openapi_extra={"x-audit-action": "model.alias", "x-permission": "promote_model"},
    )
    def set_alias(name: str, alias: str, body: AliasIn, who: Caller) -> Response:
        """Point an alias at a version. A guarded alias (``champion``, or one a promotion
        policy promotes to) moves only when its policy passes (409 ``POLICY_REFUSED``
        otherwise), or with ``override`` and a reason, for a maintainer or admin."""
        from headrace.monitoring.retraining import set_alias as move
        from headrace.registry.errors import GuardedAliasError

        permission = "override_policy" if body.override else "promote_model"
        with (
            gate.audited(who, "model.alias", f"{name}@{alias}", permission) as ticket,
            acting_as(who.name),
        ):
            try:
                before = move(
                    ws,
                    name,
                    alias,
                    body.version,
                    reason=body.reason,
                    override=body.override,
                    role=who.role(gate.namespace),
                )
            except GuardedAliasError as exc:
                raise ApiError(
                    409, "POLICY_REFUSED", str(exc), rules=list(exc.rules), version=exc.version
                ) from exc
            ticket.details = {
                "version": body.version,
                "before": before,
                "override": body.override,
            }
        return json_response(
            {"name": name, "alias": alias, "version": body.version, "previous": before}
        )

    @router.post(
        "/models/{name}/versions/{version}/transition",
        tags=["registry"],
        responses=errors,
        openapi_extra={"x-audit-action": "model.transition", "x-permission": "register_model"},
    )
    def transition(name: str, version: int, body: TransitionIn, who: Caller) -> Response:
        from headrace.registry.service import transition as move

        permission = "approve_model" if body.status != "candidate" else "register_model"
        with (
            gate.audited(who, "model.transition", f"{name}/{version}", permission),
            acting_as(who.name),
        ):
            before = move(ws, name, version, body.status, reason=body.reason)
        return json_response(
            {**_model_version_json(ws.store.registry.version(name, version)), "previous": before}
        )

    @router.post(
        "/models/{name}/promote",
        tags=["registry"],
        responses=errors,
        openapi_extra={"x-audit-action": "model.promote", "x-permission": "promote_model"},
    )
    def promote(name: str, body: PromoteIn, who: Caller) -> Response:
        """Evaluate the alias's promotion policy, rule by rule, for a version; move the
        alias when it passes (or leave it pending approval)."""
        from headrace.monitoring.retraining import promote as run_policy

        with (
            gate.audited(who, "model.promote", f"{name}@{body.to}", "promote_model") as ticket,
            acting_as(who.name),
        ):
            outcome = run_policy(
                ws,
                name,
                body.to,
                version=body.version,
                require_approval=True if body.require_approval else None,
                reason=body.reason,
            )
            ticket.details = {"status": outcome.status}
        return json_response(_outcome_json(outcome))

    @router.post(
        "/models/{name}/approve",
        tags=["registry"],
        responses=errors,
        openapi_extra={"x-audit-action": "model.approve", "x-permission": "approve_model"},
    )
    def approve(name: str, body: DecisionIn, who: Caller) -> Response:
        """Approve a pending promotion (the policy is evaluated again first)."""
        return _decision(name, body, who, approve=True)

    @router.post(
        "/models/{name}/reject",
        tags=["registry"],
        responses=errors,
        openapi_extra={"x-audit-action": "model.reject", "x-permission": "approve_model"},
    )
    def reject(name: str, body: DecisionIn, who: Caller) -> Response:
        """Reject a pending promotion."""
        return _decision(name, body, who, approve=False)

    def _decision(name: str, body: DecisionIn, who: Principal, *, approve: bool) -> Response:
        from headrace.monitoring.retraining import decide

        action = "model.approve" if approve else "model.reject"
        with (
            gate.audited(who, action, f"{name}@{body.alias}", "approve_model") as ticket,
            acting_as(who.name),
        ):
            outcome = decide(ws, name, body.alias, approve=approve, reason=body.reason)
            ticket.details = {"status": outcome.status}
        return json_response(_outcome_json(outcome))

    @router.get("/models/{name}/aliases/{alias}", tags=["registry"], responses=errors)
    def get_alias(name: str, alias: str, who: Caller) -> Response:
        """The version an alias points at."""
        gate.require(who, "read")
        return json_response(_model_version_json(ws.store.registry.resolve(name, alias)))

    @router.get(
        "/models/{name}/versions/{version}/model",
        tags=["registry"],
        responses=errors,
        response_class=Response,
    )
    def download_model(name: str, version: int, who: Caller) -> Response:
        """A version's stored model (headrace's format: ``hr.load_model`` reads it)."""
        gate.require(who, "read")
        record = ws.store.registry.version(name, version)
        return Response(ws.blobs.get_bytes(record.blob), media_type="application/octet-stream")

    @router.post(
        "/models/{name}/versions",
        tags=["registry"],
        status_code=201,
        responses=errors,
        openapi_extra={"x-audit-action": "model.register", "x-permission": "register_model"},
    )
    def register_version(name: str, body: ModelVersionIn, who: Caller) -> Response:
        """Register a model uploaded with ``PUT /blobs`` as a new version (a candidate)."""
        from headrace.io.models import FLAVORS, ModelFormatError, unpack
        from headrace.registry.service import check_name
        from headrace.store.registry import NewModelVersion

        with gate.audited(who, "model.register", name, "register_model") as ticket:
            check_name(name)
            if not ws.blobs.exists(body.blob):
                raise ApiError(404, "NOT_FOUND", f"no uploaded blob {body.blob} (PUT /blobs)")
            data = ws.blobs.get_bytes(body.blob)
            try:
                header, _ = unpack(data)
            except ModelFormatError as exc:
                raise ApiError(400, "BAD_REQUEST", f"blob {body.blob[:16]}: {exc}") from exc
            if header.get("flavor") not in FLAVORS:
                raise ApiError(
                    400,
                    "BAD_REQUEST",
                    f"blob {body.blob[:16]}: unknown flavor {header.get('flavor')!r}",
                )
            if body.run_id is not None:
                ws.store.runs.get(body.run_id)
            known = [ws.store.versions.get(v).id for v in body.data_versions]
            record = ws.store.registry.register(
                NewModelVersion(
                    name=name,
                    flavor=str(header["flavor"]),
                    blob=body.blob,
                    size=len(data),
                    signature=body.signature,
                    model_class=str(header.get("class", "?")),
                    run_id=body.run_id,
                    asset_version_id=None,
                    data_versions=known,
                    description=body.description,
                ),
                actor=who.name,
            )
            ticket.details = {"version": record.version}
        return json_response(_model_version_json(record), 201)

    @router.put(
        "/blobs",
        tags=["registry"],
        status_code=201,
        responses=errors,
        openapi_extra={
            "x-audit-action": "blob.upload",
            "x-permission": "register_model",
            "requestBody": {
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                }
            },
        },
    )
    async def upload_blob(request: Request, who: Caller) -> Response:
        """Store the body (up to 512 MiB) content-addressed; its digest names it in
        ``POST /models/{name}/versions``. Unreferenced uploads go at the next gc."""
        from headrace.server.context import spool_upload
        from headrace.server.mlflow_api import MAX_ARTIFACT

        with gate.audited(who, "blob.upload", None, "register_model") as ticket:
            digest, size = await spool_upload(ws.blobs, request, MAX_ARTIFACT)
            ticket.details = {"digest": digest, "size": size}
        return json_response({"digest": digest, "size": size}, 201)

    # -- deployments, prediction logs, monitors ---------------------------------------

    @router.get("/deployments", tags=["serving"], responses=errors)
    def deployments(who: Caller, page: Paging) -> Response:
        """Every model alias (what ``headrace serve NAME@ALIAS`` serves) with the version
        it points at, its lifecycle status, and how many predictions the model logged."""
        gate.require(who, "read")
        out = []
        for name in ws.store.registry.names():
            versions = ws.store.registry.versions(name)
            for v in versions:
                for alias in v.aliases:
                    out.append(
                        {
                            "model": name,
                            "alias": alias,
                            "version": v.version,
                            "status": v.status,
                            "predictions": ws.store.predictions.count(name),
                        }
                    )
        return _paged("deployments", out, page)

    @router.get("/predictions", tags=["serving"], responses=errors)
    def predictions(
        who: Caller,
        model: Annotated[str, Query(min_length=1, max_length=200)],
        page: Paging,
    ) -> Response:
        """A model's logged predictions, newest first (personal inputs masked)."""
        gate.require(who, "read")
        limit, offset = page
        rows = ws.store.predictions.list(model, limit=offset + limit + 1, latest=True)
        hidden: set[str] = set()
        for version in {r.version for r in rows}:
            record = ws.store.registry.version(model, version)
            for version_id in record.data_versions:
                hidden |= personal_of(ws.store.versions.get(version_id).asset, who)
        return _paged(
            "predictions",
            [{**_plain(r), "inputs": _masked([r.inputs], hidden)[0]} for r in rows],
            page,
            masked=sorted(hidden),
            total=ws.store.predictions.count(model),
        )

    @router.get("/monitors", tags=["monitoring"], responses=errors)
    def monitors(who: Caller, page: Paging) -> Response:
        """The declared monitors (what each watches, its window, limits and actions)
        and every monitor that has stored windows, with their count and the last."""
        from headrace.monitoring.runner import overview

        gate.require(who, "read")
        rows = overview(ws, strict=False)
        return _paged("monitors", rows, page)

    @router.get("/monitors/{name}/windows", tags=["monitoring"], responses=errors)
    def monitor_windows(name: str, who: Caller, page: Paging) -> Response:
        """A monitor's windows, newest first, each with its results."""
        gate.require(who, "read")
        limit, offset = page
        windows = ws.store.monitoring.windows(name, limit=offset + limit + 1)[::-1]
        results = ws.store.monitoring.results([w.id for w in windows])
        by_window: dict[str, list[Any]] = {}
        for r in results:
            by_window.setdefault(r.window_id, []).append(_plain(r))
        rows = [{**_plain(w), "results": by_window.get(w.id, [])} for w in windows]
        return _paged("windows", rows, page)

    @router.get("/alerts", tags=["monitoring"], responses=errors)
    def alerts(
        who: Caller,
        page: Paging,
        monitor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        gate.require(who, "read")
        limit, offset = page
        found = ws.store.monitoring.alerts(monitor, limit=offset + limit + 1)
        return _paged("alerts", [_plain(a) for a in found], page)

    # -- automation ---------------------------------------------------------------------

    @router.get("/queue", tags=["automation"], responses=errors)
    def run_queue(
        who: Caller,
        page: Paging,
        pipeline: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        """The run queue (``headrace queue``): what waits and why, what runs and where,
        what ended; with the count of each status."""
        gate.require(who, "read")
        limit, offset = page
        rows = ws.store.queue.list(pipeline=pipeline, limit=offset + limit + 1)
        return _paged("runs", [_plain(r) for r in rows], page, counts=ws.store.queue.counts())

    @router.post(
        "/queue",
        tags=["automation"],
        status_code=201,
        responses=errors,
        openapi_extra={"x-audit-action": "queue.add", "x-permission": "run"},
    )
    def queue_add(body: QueueIn, who: Caller) -> Response:
        """Queue a run of a declared pipeline now (``headrace queue add``)."""
        from headrace.scheduling.evaluate import enqueue_pipeline

        automation = _automation(ws)
        declared = automation.pipelines.get(body.pipeline)
        permission = _run_permission(declared.branch if declared is not None else None)
        with gate.audited(who, "queue.add", body.pipeline, permission) as ticket:
            if declared is None:
                from headrace.core.graph import suggest

                raise ApiError(
                    404,
                    "NOT_FOUND",
                    f"no pipeline named {body.pipeline!r}"
                    + suggest(body.pipeline, automation.pipelines),
                )
            made = enqueue_pipeline(
                ws,
                automation,
                body.pipeline,
                partitions=body.partitions,
                priority=body.priority,
                trigger=f"manual:{who.name}"[:300],
            )
            ticket.details = {"queue_id": made}
        return json_response({"id": made, "pipeline": body.pipeline, "status": "queued"}, 201)

    @router.get("/schedules", tags=["automation"], responses=errors)
    def schedule_list(who: Caller) -> Response:
        """Every schedule: its pipeline, when it ticks, its catch-up policy, whether it
        is on, how far it ticked and its next tick (``headrace schedules list``)."""
        from headrace.scheduling.overview import schedules

        gate.require(who, "read")
        return json_response({"schedules": schedules(ws, _automation(ws))})

    @router.get("/sensors", tags=["automation"], responses=errors)
    def sensor_list(who: Caller) -> Response:
        """Every sensor and freshness policy: what it watches, its pipeline, whether it
        is on and when it last looked (``headrace sensors list``)."""
        from headrace.scheduling.overview import sensors

        gate.require(who, "read")
        return json_response({"sensors": sensors(ws, _automation(ws))})

    def _switch(kind: str, name: str, on: bool, who: Principal) -> Response:
        from headrace.core.automation import AutomationDefinitionError
        from headrace.scheduling.overview import switch, target

        automation = _automation(ws)
        action = f"{kind}.{'on' if on else 'off'}"
        try:
            pipeline = target(automation, kind, name)
        except AutomationDefinitionError as exc:  # refused, and audited as such
            with gate.audited(who, action, name, "run"):
                raise ApiError(404, "NOT_FOUND", str(exc)) from exc
        permission = _run_permission(pipeline.branch if pipeline is not None else None)
        with gate.audited(who, action, name, permission):
            switch(ws, automation, kind, name, on)
        return json_response({"name": name, "kind": kind, "enabled": on})

    def _switch_route(kind: str, plural: str, on: bool) -> None:
        word = "on" if on else "off"

        def route(name: str, who: Caller) -> Response:
            return _switch(kind, name, on, who)

        route.__doc__ = (
            f"Switch a {kind} {word} for every daemon on this store (``headrace {plural} "
            f"{word}``); the ``run`` permission, or ``merge_protected`` when its pipeline "
            "writes to ``main``."
        )
        router.add_api_route(
            f"/{plural}/{{name}}/{word}",
            route,
            methods=["POST"],
            tags=["automation"],
            responses=errors,
            name=f"{kind}_{word}",
            openapi_extra={"x-audit-action": f"{kind}.{word}", "x-permission": "run"},
        )

    for kind, plural in (("schedule", "schedules"), ("sensor", "sensors")):
        _switch_route(kind, plural, True)
        _switch_route(kind, plural, False)

    @router.get("/notifications", tags=["automation"], responses=errors)
    def notification_list(
        who: Caller,
        page: Paging,
        status: Annotated[Literal["pending", "sent", "failed"] | None, Query()] = None,
    ) -> Response:
        """Failure notifications: sent, being retried, or failed, with every attempt."""
        gate.require(who, "read")
        limit, offset = page
        rows = ws.store.notifications.list(limit=offset + limit + 1, status=status)
        return _paged("notifications", [_plain(n) for n in rows], page)

    return router


def _automation(ws: Workspace) -> Any:
    """The project's automation definitions (schedules, sensors, pipelines)."""
    from headrace.scheduling.definitions import load_automation

    try:
        return load_automation(ws, check_paths=False)
    except Exception as exc:
        raise ApiError(503, "PROJECT_UNAVAILABLE", f"the project does not load: {exc}") from exc


def _stale(run: Any, queued: Any) -> bool:
    """Whether a run's record predates the queued run that will resume it: its status
    is then the last attempt's, and the run is in fact waiting."""
    if queued.status == "queued":
        return True
    if queued.status != "running" or run.status == "running":
        return False
    return run.ended_at is None or queued.started_at is None or run.ended_at < queued.started_at


def _run_permission(branch: str | None) -> str:
    """What starting a run on ``branch`` takes: ``merge_protected`` on a protected
    branch (``main``), ``run`` elsewhere."""
    if branch is not None and branch_permission(branch) == "merge_protected":
        return "merge_protected"
    return "run"


def _paged(key: str, items: list[Any], page: tuple[int, int], **extra: Any) -> Response:
    """One page of ``items`` as ``{key: [...], "next_page_token": ..., **extra}``."""
    limit, offset = page
    chunk, following = page_of(items, limit, offset)
    return json_response({key: chunk, "next_page_token": following, **extra})


def _side(ws: Workspace, asset: str, ref: str) -> list[Any]:
    """The versions one side of a diff names: a version id (or prefix) or a branch."""
    if ws.store.branches.exists(ref):
        heads = ws.store.versions.heads(ref, [asset])
        chosen = [v for (a, _), v in sorted(heads.items(), key=lambda kv: str(kv[0])) if a == asset]
        if not chosen:
            raise ApiError(404, "NOT_FOUND", f"asset {asset!r} has no version on branch {ref!r}")
    else:
        chosen = [ws.store.versions.get(ref)]
        if chosen[0].asset != asset:
            raise ApiError(
                400, "BAD_REQUEST", f"version {ref} is of {chosen[0].asset!r}, not {asset!r}"
            )
    for record in chosen:
        if record.format != "parquet":
            raise ApiError(
                400, "BAD_REQUEST", f"asset {asset!r} is not a table; only tables can be diffed"
            )
    return chosen


def _written_flavor(ws: Workspace, asset: str, branch: str, version: str | None) -> str:
    """The table library an asset was written with (what ``hr.read`` returns by default)."""
    if version is not None:
        return ws.store.versions.get(version).flavor
    heads = ws.store.versions.heads(branch, [asset])
    return next((v.flavor for (a, _), v in heads.items() if a == asset), "arrow")


def _outcome_json(outcome: Any) -> dict[str, Any]:
    """A promotion's outcome: the status and each rule's verdict."""
    evaluation = outcome.evaluation
    return {
        "status": outcome.status,
        "name": evaluation.name,
        "alias": evaluation.alias,
        "candidate": evaluation.candidate.version,
        "holder": None if evaluation.holder is None else evaluation.holder.version,
        "policy": evaluation.policy is not None,
        "verdicts": [_plain(v) for v in evaluation.verdicts],
        "previous": outcome.previous,
    }


def _version_json(v: Any) -> dict[str, Any]:
    out: dict[str, Any] = _plain(v)
    out.pop("blob", None)
    return out


def _check_json(c: Any, hidden: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = _plain(c)
    out["sample"] = _masked(list(c.sample), hidden)
    return out


def _model_version_json(v: Any) -> dict[str, Any]:
    out: dict[str, Any] = _plain(v)
    out.pop("blob", None)
    return out
