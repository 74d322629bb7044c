"""The Python API: the same operations as the CLI, for notebooks, scripts and tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.core.assets import AssetSpec
from headrace.core.checks import Suite
from headrace.core.observers import RunObserver
from headrace.data import versions
from headrace.orchestration import service
from headrace.orchestration.reporting import Reporter
from headrace.orchestration.runner import RunResult
from headrace.runtime.workspace import Workspace, open_workspace
from headrace.tracking.runs import active_run as active_run
from headrace.tracking.runs import log_artifact as log_artifact
from headrace.tracking.runs import log_metric as log_metric
from headrace.tracking.runs import log_metrics as log_metrics
from headrace.tracking.runs import log_param as log_param
from headrace.tracking.runs import log_params as log_params
from headrace.tracking.runs import set_tag as set_tag
from headrace.tracking.runs import set_tags as set_tags
from headrace.tracking.runs import start_run as start_run

if TYPE_CHECKING:
    from headrace.quality.results import ValidationReport
    from headrace.registry.service import LoadedModel
    from headrace.store.registry import ModelVersionRecord
    from headrace.store.tracking import SearchPage


@contextlib.contextmanager
def _borrowed(workspace: Workspace | None) -> Iterator[Workspace]:
    """The given workspace, or one opened from the current folder and closed after."""
    if workspace is not None:
        yield workspace
        return
    opened = open_workspace()
    try:
        yield opened
    finally:
        opened.close()


def _remote(workspace: Any, assets: Any, **local_only: Any) -> Any:
    """The team server ``HEADRACE_URL`` names, when no workspace or definitions are
    given; None otherwise. Options that only make sense locally are refused there."""
    if workspace is not None or assets is not None:
        return None
    from headrace.client import Remote, RemoteError

    remote = Remote.from_environment()
    if remote is not None:
        given = sorted(k for k, v in local_only.items() if v is not None)
        if given:
            raise RemoteError(
                f"{', '.join(given)}: not available through the team server (HEADRACE_URL); "
                "the server runs with its own settings"
            )
    return remote


def _workspace(
    workspace: Workspace | Path | str | None, assets: Sequence[AssetSpec] | None
) -> Workspace:
    if isinstance(workspace, Workspace):
        return workspace
    return open_workspace(workspace, definitions=assets)


def materialize(
    selection: str | Sequence[str] | None = None,
    *,
    assets: Sequence[AssetSpec] | None = None,
    workspace: Workspace | Path | str | None = None,
    params: Mapping[str, Any] | None = None,
    partitions: str | Sequence[str] | None = None,
    branch: str = "main",
    executor: str | None = None,
    max_concurrency: int | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
    observers: Sequence[RunObserver] | None = None,
    exclude: str | None = None,
) -> RunResult:
    """Materialize a selection of assets and return what the run did.

    Args:
        selection: dbt-like selection (``"+flight_features"``, ``"tag:daily"``); all
            assets when None.
        exclude: assets to leave out, in the selection's syntax (``"group:ml"``).
        assets: asset definitions to use instead of the workspace's project module.
        workspace: the workspace folder (or an open :class:`Workspace`); found upward
            from the current folder when None.
        params: run params, validated against the assets' keyword-only parameters.
        partitions: a key (``"2013-07"``), a range (``"2013-01..2013-06"``) or a list.
        branch: the branch whose versions are read and written.
        executor: ``in_process``, ``threads`` or ``processes`` (default from settings).
        max_concurrency: steps run at once by the threads and processes executors.
        force: run every step even when its cached version is still valid.
        reporter: receives progress callbacks.
        observers: receive run and step events with the versions read and written
            (default: those the settings configure, e.g. OpenLineage).

    Returns:
        A :class:`RunResult`; failed steps are in ``result.failed`` (no exception).

    With ``HEADRACE_URL`` set (and no ``workspace``), the run happens in the team server,
    as ``HEADRACE_TOKEN``'s principal (see :mod:`headrace.client`).
    """
    remote = _remote(
        workspace,
        assets,
        executor=executor,
        max_concurrency=max_concurrency,
        reporter=reporter,
        observers=observers,
    )
    if remote is not None:
        try:
            return remote.materialize(  # type: ignore[no-any-return]
                selection,
                params=params,
                partitions=partitions,
                branch=branch,
                force=force,
                exclude=exclude,
            )
        finally:
            remote.close()
    ws = _workspace(workspace, assets)
    return service.materialize(
        ws,
        selection,
        exclude=exclude,
        params=params,
        partitions=partitions,
        branch=branch,
        executor=executor,
        max_concurrency=max_concurrency,
        force=force,
        reporter=reporter,
        observers=observers,
    )


def backfill(
    selection: str | Sequence[str] | None = None,
    *,
    partitions: str | Sequence[str],
    assets: Sequence[AssetSpec] | None = None,
    workspace: Workspace | Path | str | None = None,
    params: Mapping[str, Any] | None = None,
    branch: str = "main",
    executor: str | None = None,
    max_concurrency: int | None = None,
    reporter: Reporter | None = None,
) -> RunResult:
    """Materialize each partition in ``partitions`` that has no version on the branch
    (in the team server when ``HEADRACE_URL`` is set, as :func:`materialize`)."""
    remote = _remote(
        workspace, assets, executor=executor, max_concurrency=max_concurrency, reporter=reporter
    )
    if remote is not None:
        try:
            return remote.materialize(  # type: ignore[no-any-return]
                selection, params=params, partitions=partitions, branch=branch, missing_only=True
            )
        finally:
            remote.close()
    ws = _workspace(workspace, assets)
    return service.materialize(
        ws,
        selection,
        params=params,
        partitions=partitions,
        branch=branch,
        executor=executor,
        max_concurrency=max_concurrency,
        missing_only=True,
        trigger="backfill",
        reporter=reporter,
    )


def resume(
    run_id: str,
    *,
    assets: Sequence[AssetSpec] | None = None,
    workspace: Workspace | Path | str | None = None,
    reporter: Reporter | None = None,
) -> RunResult:
    """Finish an interrupted or failed run; completed steps are not run again (in the
    team server, when ``HEADRACE_URL`` is set and no workspace is given)."""
    remote = _remote(workspace, assets, reporter=reporter)
    if remote is not None:
        try:
            return remote.resume(run_id)  # type: ignore[no-any-return]
        finally:
            remote.close()
    return service.resume(_workspace(workspace, assets), run_id, reporter=reporter)


def read(
    asset: str,
    *,
    partition: str | None = None,
    branch: str = "main",
    version: str | None = None,
    as_of: str | float | datetime | None = None,
    as_: str | None = None,
    workspace: Workspace | Path | str | None = None,
) -> Any:
    """Read an asset's value: the branch's current version, a version by id, or the
    version the branch pointed at ``as_of`` a time (``"2026-01-05T10:00"``).

    Tables come back as pandas, polars or Arrow (``as_=``; default: as written). With
    ``HEADRACE_URL`` set (and no ``workspace``), the value comes from the team server.
    """
    remote = _remote(workspace, None)
    if remote is not None:
        try:
            return remote.read(
                asset, partition=partition, branch=branch, version=version, as_of=as_of, as_=as_
            )
        finally:
            remote.close()
    return versions.read(
        _workspace(workspace, None),
        asset,
        partition=partition,
        branch=branch,
        version=version,
        as_of=as_of,
        as_=as_,
    )


def validate(
    data: Any,
    suite: Suite,
    *,
    sample: int = 5,
    references: Mapping[str, Any] | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
    previous_schema: Mapping[str, str] | None = None,
) -> ValidationReport:
    """Validate a pandas, polars or Arrow table against a suite of checks, in one pass.

    ``references`` gives the tables ``references`` checks look values up in (by asset
    name); ``history`` the past values of each anomaly check's metric (oldest first);
    ``previous_schema`` the previous version's columns and Arrow types, for schema drift.

    Example:
        >>> from headrace import checks as c
        >>> report = validate(df, Suite("orders", [c.not_null("id"), c.unique("id")]))
        >>> report.success, [r.name for r in report.failed]
    """
    from headrace.quality.engine import validate as run

    return run(
        data,
        suite,
        sample=sample,
        references=references,
        history=history,
        previous_schema=previous_schema,
    )


# -- experiment tracking ----------------------------------------------------------------
# start_run and active_run are tracking's own (imported above): light, no store import.


def log_model(
    model: Any,
    name: str,
    *,
    frame: Any = None,
    data_versions: Sequence[str] = (),
    flavor: str | None = None,
    description: str | None = None,
    workspace: Workspace | None = None,
) -> ModelVersionRecord:
    """Register a fitted model as a new version of ``name`` (a ``candidate``).

    ``frame`` (the training features) gives the input signature (without it, a
    scikit-learn, LightGBM or XGBoost model fitted on named numeric columns gives its
    own); ``data_versions``
    (asset version ids) the data it was trained on. Within ``start_run`` the version is
    linked to the run. In a pipeline, return the model from a ``@hr.model`` asset instead.
    """
    from headrace.registry.service import register_model
    from headrace.tracking import runs

    if runs.STEP.get() is not None:
        from headrace.core.tracking import TrackingError

        raise TrackingError(
            "log_model() inside an asset: make the asset a @hr.model and return the model; "
            "its version is registered with the run and the asset's inputs as its data"
        )
    run = runs.active_run()
    remote = None
    if workspace is None and (run is None or hasattr(run.ws, "remote")):
        remote = _remote(None, None)
    if remote is not None:  # registered in the team server, linked to its run
        try:
            return remote.log_model(  # type: ignore[no-any-return]
                model,
                name,
                frame=frame,
                run_id=run.id if run is not None else None,
                data_versions=data_versions,
                flavor=flavor,
                description=description,
            )
        finally:
            remote.close()
    with _borrowed(workspace or (run.ws if run is not None else None)) as ws:
        return register_model(
            ws,
            model,
            name,
            frame=frame,
            run_id=run.id if run is not None else None,
            data_versions=data_versions,
            flavor=flavor,
            description=description,
        )


def load_model(
    uri: str,
    *,
    allow_pickle: bool = False,
    trusted: Sequence[str] = (),
    workspace: Workspace | None = None,
) -> LoadedModel:
    """A registered model: ``"flight_delay@champion"``, ``"flight_delay/3"`` or the
    newest ``"flight_delay"``. Its ``predict(df)`` checks the input against the
    signature. Pickled models load only with ``allow_pickle=True``."""
    from headrace.registry.service import load_model as load

    remote = _remote(workspace, None)
    if remote is not None:
        try:
            return remote.load_model(  # type: ignore[no-any-return]
                uri, allow_pickle=allow_pickle, trusted=trusted
            )
        finally:
            remote.close()
    with _borrowed(workspace) as ws:
        return load(ws, uri, allow_pickle=allow_pickle, trusted=trusted)


def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    reason: str | None = None,
    override: bool = False,
    workspace: Workspace | None = None,
) -> int | None:
    """Point ``alias`` of model ``name`` at ``version``; returns the version it pointed
    at before (None: it was new).

    A guarded alias (``champion``, or one a promotion policy promotes to) moves only as
    a promotion: its policy judges the version and a refusal raises
    :class:`~headrace.registry.errors.GuardedAliasError` naming the failed rule, with
    nothing moved. ``override=True`` with a ``reason`` moves it anyway, for a maintainer
    or admin, audited with the rules it overrode. With ``HEADRACE_URL`` set and no
    workspace given, the team server decides, under the token's role.
    """
    from headrace.registry.service import set_alias as move

    remote = _remote(workspace, None)
    if remote is not None:
        try:
            return remote.set_alias(  # type: ignore[no-any-return]
                name, alias, version, reason=reason, override=override
            )
        finally:
            remote.close()
    with _borrowed(workspace) as ws:
        return move(ws, name, alias, version, reason=reason, override=override)


def search_runs(
    filter: str | None = None,
    *,
    experiments: Sequence[str] | None = None,
    order_by: str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    columns: Sequence[str] | None = None,
    workspace: Workspace | None = None,
) -> SearchPage:
    """Tracked runs matching ``filter`` (the language of ``headrace runs search``), a
    page at a time: ``page.runs`` and ``page.next_page_token``. ``columns`` limits the
    params, metrics and tags loaded (``["metrics.auc", "params.*"]``). With
    ``HEADRACE_URL`` set (and no ``workspace``), the team server answers."""
    remote = _remote(workspace, None)
    if remote is not None:
        try:
            return remote.search_runs(  # type: ignore[no-any-return]
                filter,
                experiments=experiments,
                order_by=order_by,
                max_results=max_results,
                page_token=page_token,
                columns=columns,
            )
        finally:
            remote.close()
    with _borrowed(workspace) as ws:
        return ws.store.tracking.search(
            experiments_=experiments,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            columns=columns,
        )
