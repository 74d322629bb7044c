"""Working against a team server instead of a local workspace.

Set ``HEADRACE_URL`` (the server, ``http://host:8650``) and ``HEADRACE_TOKEN`` (a token
from ``headrace tokens issue``): then ``hr.materialize``, ``hr.backfill``, ``hr.read`` and
tracked runs, and the CLI's ``materialize``, ``backfill``, ``runs`` (``list``, ``show``,
``logs``, ``resume``), ``branch``, ``merge``, ``log``, ``versions``, ``show``, ``diff``,
``lineage``, ``models``, ``quarantine``, ``assets list``, ``predictions list``,
``experiments list``, ``runs search``, ``queue``, ``queue add``, ``notifications``,
``monitor list`` and ``show``, ``audit``, ``principals``, ``tokens`` and ``whoami`` go
through the server, as the token's principal, with the server's role checks and audit, and answer as
they do locally. The server's refusals come back as :class:`RemoteError` naming what was
refused and why.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from headrace.runtime.remote import Remote as _Transport
from headrace.runtime.remote import RemoteError


class Remote(_Transport):
    """A team server and the token to call it with, and what the interfaces do there."""

    # -- runs ---------------------------------------------------------------------------

    def materialize(
        self,
        selection: str | Sequence[str] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        partitions: str | Sequence[str] | None = None,
        branch: str = "main",
        force: bool = False,
        missing_only: bool = False,
        exclude: str | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll: float = 0.2,
    ) -> Any:
        """Start a run in the server and follow it to its end; a ``RunResult``."""
        expression = (
            selection if selection is None or isinstance(selection, str) else " ".join(selection)
        )
        parts = [partitions] if isinstance(partitions, str) else partitions
        started = self.call(
            "POST",
            "/runs",
            json={
                "select": expression,
                "exclude": exclude,
                "params": {k: str(v) for k, v in (params or {}).items()},
                "partitions": None if parts is None else list(parts),
                "branch": branch,
                "force": force,
                "missing_only": missing_only,
            },
        )
        return self.follow(started["run_id"], on_progress=on_progress, poll=poll)

    def resume(
        self,
        run_id: str,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll: float = 0.2,
    ) -> Any:
        """Resume an interrupted or failed run in the server (completed steps are kept)
        and follow it to its end; a ``RunResult``."""
        started = self.call("POST", f"/runs/{run_id}/resume")
        return self.follow(started["run_id"], on_progress=on_progress, poll=poll)

    def follow(
        self,
        run_id: str,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll: float = 0.2,
    ) -> Any:
        """Poll a run in the server until it ends; a ``RunResult``."""
        from headrace.orchestration.recording import StepState
        from headrace.orchestration.runner import RunResult

        while True:
            run = self.call("GET", f"/runs/{run_id}")
            if on_progress is not None:
                on_progress(run)
            if run["status"] not in ("running", "queued"):
                break
            time.sleep(poll)
        fields = set(StepState.__dataclass_fields__)
        steps = {
            s["key"]: StepState(**{k: v for k, v in s.items() if k in fields})
            for s in run["step_records"]
        }
        return RunResult(run_id=run_id, status=run["status"], steps=steps)

    # -- tracking -----------------------------------------------------------------------

    def search_runs(
        self,
        filter: str | None = None,
        *,
        experiments: Sequence[str] | None = None,
        order_by: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> Any:
        """``hr.search_runs`` answered by the server, a page of ``max_results`` at a time
        (fetched in pieces of at most 1,000)."""
        from headrace.store.tracking import SearchPage, TrackedRun

        if not isinstance(max_results, int) or not 1 <= max_results <= 50_000:
            raise RemoteError(f"max_results must be 1 to 50000, got {max_results!r}")
        found: list[Any] = []
        token = page_token
        while len(found) < max_results:
            got = self.call(
                "GET",
                "/tracked-runs",
                params={
                    "experiment": list(experiments) if experiments is not None else None,
                    "filter": filter,
                    "order_by": order_by,
                    "column": list(columns) if columns is not None else None,
                    "limit": min(1000, max_results - len(found)),
                    "page_token": token,
                },
            )
            found += [_record(TrackedRun, r) for r in got["runs"]]
            token = got["next_page_token"]
            if token is None:
                break
        return SearchPage(runs=found, next_page_token=token)

    # -- models -------------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        frame: Any = None,
        run_id: str | None = None,
        data_versions: Sequence[str] = (),
        flavor: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Store the model as locally (its flavor's safe format, its signature from
        ``frame`` or the estimator), upload it, and register it as a new version in the
        server."""
        from headrace.io.estimators import signature_of
        from headrace.io.models import dump_model
        from headrace.registry.service import check_name

        check_name(name)
        _, _, data = dump_model(model, flavor)
        signature = signature_of(model, frame)
        digest = self.call("PUT", "/blobs", content=data)["digest"]
        made = self.call(
            "POST",
            f"/models/{name}/versions",
            json={
                "blob": digest,
                "signature": None if signature is None else signature.to_dict(),
                "run_id": run_id,
                "data_versions": list(data_versions),
                "description": description,
            },
        )
        return _model_record(made, digest)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        reason: str | None = None,
        override: bool = False,
    ) -> int | None:
        """Point ``alias`` at ``version`` through the server, as the token's principal;
        returns the version it pointed at before. A guarded alias moves only when its
        promotion policy passes (:class:`RemoteError`, status 409, naming the rule,
        otherwise), or with ``override`` and a ``reason`` for a maintainer or admin."""
        body: dict[str, Any] = {"version": version, "reason": reason}
        if override:
            body["override"] = True
        answer = self.call("PUT", f"/models/{name}/aliases/{alias}", json=body)
        previous = answer["previous"]
        return None if previous is None else int(previous)

    def load_model(
        self, uri: str, *, allow_pickle: bool = False, trusted: Sequence[str] = ()
    ) -> Any:
        """A registered version from the server, loaded here as ``hr.load_model`` does."""
        from headrace.io.models import load_model_bytes
        from headrace.registry.service import LoadedModel, parse_uri

        name, alias, number = parse_uri(uri)
        if number is not None:
            found = next((v for v in self._versions(name) if int(v["version"]) == number), None)
            if found is None:
                raise RemoteError(f"model {name!r} has no version {number} on {self.url}")
        elif alias is not None:
            found = self.call("GET", f"/models/{name}/aliases/{alias}")
        else:
            versions = self._versions(name)
            if not versions:
                raise RemoteError(f"model {name!r} has no versions on {self.url}")
            found = versions[-1]
        data = self.call(
            "GET", f"/models/{name}/versions/{found['version']}/model", raw=True
        ).content
        return LoadedModel(
            record=_model_record(found),
            model=load_model_bytes(data, allow_pickle=allow_pickle, trusted=trusted),
        )

    def _versions(self, name: str) -> list[dict[str, Any]]:
        return self.pages(f"/models/{name}/versions", "versions")

    # -- data ---------------------------------------------------------------------------

    def lineage(self, version_id: str, *, upstream: bool = True, depth: int = 20) -> Any:
        """The version lineage tree the server computes (``headrace lineage``), as
        :class:`~headrace.data.lineage.LineageNode` objects."""
        from headrace.data.lineage import LineageNode

        got = self.call(
            "GET",
            f"/versions/{version_id}/lineage",
            params={"direction": "upstream" if upstream else "downstream", "depth": depth},
        )

        def node(data: Mapping[str, Any]) -> LineageNode:
            return LineageNode(
                version=_version_record(data["version"]),
                parameter=data["parameter"],
                repeated=data["repeated"],
                children=[node(child) for child in data["children"]],
            )

        return node(got)

    def read(
        self,
        asset: str,
        *,
        partition: str | None = None,
        branch: str = "main",
        version: str | None = None,
        as_of: Any = None,
        as_: str | None = None,
    ) -> Any:
        """An asset's value as ``hr.read`` gives it (personal columns the caller may not
        see come back masked)."""
        import pyarrow as pa

        from headrace.io.frames import FLAVORS, from_arrow

        if as_ is not None and as_ not in FLAVORS:
            raise RemoteError(f"as_ must be one of {', '.join(FLAVORS)}, got {as_!r}")
        answer = self.call(
            "GET",
            f"/assets/{asset}/data",
            params={
                "branch": branch,
                "partition": partition,
                "version": version,
                "as_of": None if as_of is None else str(as_of),
            },
            raw=True,
        )
        if answer.headers.get("content-type", "").startswith("application/vnd.apache.arrow"):
            table = pa.ipc.open_stream(answer.content).read_all()
            return from_arrow(table, as_ or answer.headers.get("x-headrace-flavor", "arrow"))
        return answer.json()["value"]


def _model_record(data: Mapping[str, Any], blob: str = "") -> Any:
    from headrace.store.registry import ModelVersionRecord

    return _record(ModelVersionRecord, {**data, "blob": blob, "aliases": tuple(data["aliases"])})


class RemoteWorkspace:
    """What the CLI's read commands use of a workspace (``ws.store.runs``, ``.branches``,
    ``.tracking``, ``.registry``), answered by a team server: the same records, so the
    same output."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.store = _RemoteStore(remote)

    def close(self) -> None:
        self.remote.close()

    def __enter__(self) -> RemoteWorkspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _record(kind: Any, data: Mapping[str, Any]) -> Any:
    fields = set(kind.__dataclass_fields__)
    return kind(**{k: v for k, v in data.items() if k in fields})


class _RemoteStore:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote
        self._runs: dict[str, dict[str, Any]] = {}
        self.runs = _RemoteRuns(self)
        self.branches = _RemoteBranches(remote)
        self.tracking = _RemoteTracking(self)
        self.registry = _RemoteRegistry(self)
        self.quality = _RemoteQuality(remote)
        self.governance = _RemoteGovernance(remote)
        self.versions = _RemoteVersions(remote)
        self.predictions = _RemotePredictions(remote)
        self.monitoring = _RemoteMonitoring(remote)
        self.queue = _RemoteQueue(remote)
        self.notifications = _RemoteNotifications(remote)

    def run(self, run_id: str) -> dict[str, Any]:
        if run_id not in self._runs:
            found: dict[str, Any] = self._remote.call("GET", f"/runs/{run_id}")
            self._runs[run_id] = self._runs[found["id"]] = found
        return self._runs[run_id]


class _RemoteRuns:
    def __init__(self, store: _RemoteStore) -> None:
        self._store = store

    def list(
        self, *, limit: int = 20, offset: int = 0, status: str | None = None
    ) -> builtins.list[Any]:
        from headrace.store.records import RunRecord

        got = self._store._remote.call(
            "GET",
            "/runs",
            params={"limit": limit, "page_token": str(offset), "status": status},
        )
        self._counts = {r["id"]: r["steps"] for r in got["runs"]}
        return [_record(RunRecord, r) for r in got["runs"]]

    def step_counts(self, run_ids: Any) -> dict[str, dict[str, int]]:
        known = getattr(self, "_counts", {})
        return {i: known.get(i) or self._counts_of(i) for i in run_ids}

    def _counts_of(self, run_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for step in self._store.run(run_id)["step_records"]:
            counts[step["status"]] = counts.get(step["status"], 0) + 1
        return counts

    def get(self, run_id: str) -> Any:
        from headrace.store.records import RunRecord

        return _record(RunRecord, self._store.run(run_id))

    def steps(self, run_id: str) -> builtins.list[Any]:
        from headrace.store.records import StepRecord

        return [_record(StepRecord, s) for s in self._store.run(run_id)["step_records"]]

    def logs(self, run_id: str, step_key: str | None = None) -> builtins.list[Any]:
        from headrace.store.records import LogRecord

        got = self._store._remote.call("GET", f"/runs/{run_id}/logs", params={"step": step_key})
        return [_record(LogRecord, x) for x in got["logs"]]


class _RemoteBranches:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def list(self) -> builtins.list[Any]:
        from headrace.store.branches import BranchRecord

        return [_record(BranchRecord, b) for b in self._remote.pages("/branches", "branches")]

    def exists(self, name: str) -> bool:
        return any(b.name == name for b in self.list())

    def log(
        self, *, branch: str | None = None, asset: str | None = None, limit: int = 100
    ) -> builtins.list[Any]:
        from headrace.store.branches import EventRecord

        got = self._remote.call(
            "GET", "/log", params={"branch": branch, "asset": asset, "limit": min(limit, 1000)}
        )
        return [_record(EventRecord, e) for e in got["events"]]


def _version_record(data: Mapping[str, Any]) -> Any:
    from headrace.store.records import VersionRecord

    return _record(
        VersionRecord, {**data, "blob": "", "primary_key": tuple(data.get("primary_key") or ())}
    )


class _RemoteVersions:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def list(
        self, asset: str, *, partition: str | None = None, limit: int = 20
    ) -> builtins.list[Any]:
        got = self._remote.call(
            "GET",
            f"/assets/{asset}/versions",
            params={"partition": partition, "limit": min(limit, 1000)},
        )
        return [_version_record(v) for v in got["versions"]]

    def heads(self, branch: str, assets: Any = None) -> dict[tuple[str, str | None], Any]:
        params = {"asset": None if assets is None else builtins.list(assets)}
        found = self._remote.pages(f"/branches/{branch}/heads", "versions", params)
        return {(v["asset"], v["partition"]): _version_record(v) for v in found}

    def get(self, ref: str) -> Any:
        return _version_record(self._remote.call("GET", f"/versions/{ref}"))


class _RemotePredictions:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote
        self._totals: dict[str, int] = {}

    def list(self, model: str, *, limit: int = 100, latest: bool = True) -> builtins.list[Any]:
        """The newest ``limit`` logged rows, newest first (the server's only order)."""
        from headrace.store.predictions import PredictionRecord

        got = self._remote.call(
            "GET", "/predictions", params={"model": model, "limit": min(limit, 1000)}
        )
        self._totals[model] = int(got["total"])
        return [_record(PredictionRecord, p) for p in got["predictions"]]

    def count(self, model: str) -> int:
        if model not in self._totals:
            self.list(model, limit=1)
        return self._totals[model]


class _RemoteQueue:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote
        self._counts: dict[str, int] | None = None

    def list(self, *, pipeline: str | None = None, limit: int = 100) -> builtins.list[Any]:
        from headrace.store.automation import QueuedRun

        got = self._remote.call(
            "GET", "/queue", params={"pipeline": pipeline, "limit": min(limit, 1000)}
        )
        self._counts = {k: int(v) for k, v in got["counts"].items()}
        return [_record(QueuedRun, {**r, "tags": tuple(r["tags"])}) for r in got["runs"]]

    def counts(self) -> dict[str, int]:
        if self._counts is None:
            self.list(limit=1)
        return dict(self._counts or {})

    def add(self, pipeline: str, *, partitions: Any = None, priority: int = 0) -> str:
        got = self._remote.call(
            "POST",
            "/queue",
            json={"pipeline": pipeline, "partitions": partitions, "priority": priority},
        )
        return str(got["id"])


class _RemoteNotifications:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def list(self, *, limit: int = 50, status: str | None = None) -> builtins.list[Any]:
        from headrace.store.automation import Notification

        got = self._remote.call(
            "GET", "/notifications", params={"limit": min(limit, 1000), "status": status}
        )
        return [_record(Notification, n) for n in got["notifications"]]


class _RemoteMonitoring:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def declared(self) -> builtins.list[dict[str, Any]]:
        """The server's monitors: declared ones with their settings, stored ones."""
        return self._remote.pages("/monitors", "monitors")

    def windows(self, monitor: str, *, limit: int | None = None) -> builtins.list[Any]:
        from headrace.store.monitoring import WindowRecord

        got = self._remote.call(
            "GET", f"/monitors/{monitor}/windows", params={"limit": min(limit or 1000, 1000)}
        )
        return [_record(WindowRecord, w) for w in reversed(got["windows"])]

    def alerts(self, monitor: str | None = None, *, limit: int = 50) -> builtins.list[Any]:
        from headrace.store.monitoring import AlertRecord

        got = self._remote.call(
            "GET", "/alerts", params={"monitor": monitor, "limit": min(limit, 1000)}
        )
        return [_record(AlertRecord, a) for a in got["alerts"]]


class _RemoteGovernance:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def audit(self, *, limit: int = 100, after: int = 0) -> list[Any]:
        from headrace.store.governance import AuditEntry

        got = self._remote.call(
            "GET", "/audit", params={"limit": min(limit, 1000), "page_token": str(after)}
        )
        return [_record(AuditEntry, e) for e in got["entries"]]

    def verify(self) -> tuple[int, str | None]:
        got = self._remote.call("GET", "/audit/verify")
        return int(got["checked"]), got["problem"]

    def verify_trail(self, witnessed: list[str]) -> Any:
        """The server's verdict on its audit log, against ``witnessed`` checkpoints."""
        from headrace.core.audit_chain import ChainVerdict

        got = self._remote.call("GET", "/audit/verify", params={"checkpoint": witnessed})
        return ChainVerdict(
            int(got["checked"]),
            got["problem"],
            int(got["legacy"]),
            tuple(got["keys"]),
            int(got["checkpoints"]),
        )

    def checkpoint(self) -> tuple[str, str]:
        """(the checkpoint line the server signed and kept, its blob's digest)."""
        got = self._remote.call("POST", "/audit/checkpoint")
        return str(got["checkpoint"]), str(got["blob"])

    def create_principal(
        self, name: str, *, kind: str, role: str | None, namespace: str, actor: str | None
    ) -> None:
        body = {"name": name, "kind": kind, "role": role or "viewer", "namespace": namespace}
        self._remote.call("POST", "/principals", json={**body, "token": False})

    def principals(self) -> list[Any]:
        from headrace.store.governance import Principal

        return [
            _record(Principal, {**p, "grants": p["roles"]})
            for p in self._remote.pages("/principals", "principals")
        ]

    def grant(self, name: str, role: str, *, namespace: str, actor: str) -> None:
        self._remote.call(
            "POST", f"/principals/{name}/grants", json={"role": role, "namespace": namespace}
        )

    def revoke_grant(self, name: str, *, namespace: str, actor: str) -> None:
        self._remote.call("DELETE", f"/principals/{name}/grants", params={"namespace": namespace})

    def set_disabled(self, name: str, disabled: bool, *, actor: str) -> None:
        self._remote.call("POST", f"/principals/{name}/{'disable' if disabled else 'enable'}")

    def issue_token(
        self,
        name: str,
        *,
        expires_in: float | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> str:
        days = None if expires_in is None else expires_in / 86400
        got = self._remote.call(
            "POST",
            f"/principals/{name}/tokens",
            json={"expires_days": days, "description": description},
        )
        return str(got["token"])

    def tokens(self, name: str | None = None) -> list[Any]:
        from headrace.store.governance import TokenRecord

        names = [name] if name is not None else [p.name for p in self.principals()]
        out = []
        for each in names:
            got = self._remote.call("GET", f"/principals/{each}/tokens", params={"limit": 1000})
            out += [_record(TokenRecord, t) for t in got["tokens"]]
        return sorted(out, key=lambda t: t.created_at)

    def revoke_token(self, token_id: str, *, actor: str) -> None:
        self._remote.call("DELETE", f"/tokens/{token_id}")


class _RemoteQuality:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def quarantined(
        self, *, branch: str | None = None, status: str | None = "held", limit: int = 100
    ) -> list[Any]:
        from headrace.store.quality import QuarantineRecord

        got = self._remote.call(
            "GET",
            "/quarantine",
            params={"branch": branch, "status": status or "all", "limit": min(limit, 1000)},
        )
        return [_record(QuarantineRecord, q) for q in got["quarantine"]]


class _RemoteTracking:
    def __init__(self, store: _RemoteStore) -> None:
        self._store = store

    def params(self, run_id: str) -> dict[str, str]:
        return dict(self._store.run(run_id)["tracked"]["params"])

    def metrics(self, run_id: str) -> dict[str, float]:
        return dict(self._store.run(run_id)["tracked"]["metrics"])

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self._store.run(run_id)["tracked"]["tags"])

    def experiments(self) -> builtins.list[Any]:
        from headrace.store.tracking import ExperimentRecord

        found = self._store._remote.pages("/experiments", "experiments")
        self._counts = {e["id"]: int(e["runs"]) for e in found}
        return [_record(ExperimentRecord, e) for e in found]

    def run_counts(self) -> dict[str, int]:
        if not hasattr(self, "_counts"):
            self.experiments()
        return dict(self._counts)

    def search(
        self,
        *,
        experiments_: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> Any:
        return self._store._remote.search_runs(
            filter,
            experiments=experiments_,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            columns=columns,
        )


class _RemoteRegistry:
    def __init__(self, store: _RemoteStore) -> None:
        self._store = store

    def _pages(self, path: str, key: str) -> builtins.list[Any]:
        return self._store._remote.pages(path, key)

    def names(self) -> builtins.list[str]:
        return [str(n) for n in self._pages("/models", "models")]

    def versions(self, name: str) -> builtins.list[Any]:
        return [_model_record(v) for v in self._pages(f"/models/{name}/versions", "versions")]

    def for_run(self, run_id: str) -> builtins.list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(**m) for m in self._store.run(run_id)["models"]]


__all__ = ["Remote", "RemoteError", "RemoteWorkspace"]
