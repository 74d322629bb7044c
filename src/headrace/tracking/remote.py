"""Tracked runs logged to a team server: what ``start_run`` writes through when
``HEADRACE_URL`` is set and no workspace is given.

It stands in for the two parts of a workspace an :class:`~headrace.tracking.runs.ActiveRun`
uses, ``store.tracking`` (experiment, start, write) and ``blobs`` (``put_file``), and
sends them over the server's MLflow REST surface: a run is created there, each batch goes
as ``log-batch`` calls within MLflow's limits, artifacts are uploaded through the
artifact proxy, and ending the run sets its status. So the buffering, the checks and the
errors of a local run are the same; the server's refusals (401, 403) come back as
:class:`~headrace.runtime.remote.RemoteError`.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from headrace.core.tracking import Tracked
from headrace.runtime.remote import Remote

_MLFLOW = "/api/2.0/mlflow"
_STATUS = {"success": "FINISHED", "failed": "FAILED", "canceled": "KILLED", "running": "RUNNING"}
_BATCH = 1000  # MLflow's limit on the items of one log-batch call (100 params, 100 tags)


class RemoteTracking:
    def __init__(self, remote: Remote) -> None:
        self._remote = remote
        self._experiments: dict[str, str] = {}  # run id -> its experiment's MLflow id
        self._ids: dict[str, str] = {}  # experiment name -> its MLflow id

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return self._remote.call(method, path, json=body, prefix=_MLFLOW)

    def experiment(self, name: str) -> Any:
        from headrace.runtime.remote import RemoteError

        if name not in self._ids:
            try:
                found = self._remote.call(
                    "GET",
                    "/experiments/get-by-name",
                    params={"experiment_name": name},
                    prefix=_MLFLOW,
                )
                self._ids[name] = found["experiment"]["experiment_id"]
            except RemoteError as exc:
                if exc.status != 404:
                    raise
                self._ids[name] = self._call("POST", "/experiments/create", {"name": name})[
                    "experiment_id"
                ]
        return SimpleNamespace(id=self._ids[name], name=name)

    def start(
        self,
        *,
        experiment_id: str,
        name: str | None,
        parent_run_id: str | None,
        host: str | None = None,
        pid: int | None = None,
        **_: Any,
    ) -> str:
        tags = [{"key": "headrace.host", "value": str(host)}] if host else []
        if parent_run_id:
            tags.append({"key": "mlflow.parentRunId", "value": parent_run_id})
        body = {
            "experiment_id": experiment_id,
            "run_name": name or "",
            "start_time": int(time.time() * 1000),
            "tags": tags,
        }
        run = self._call("POST", "/runs/create", body)["run"]["info"]
        self._experiments[run["run_id"]] = run["experiment_id"]
        return str(run["run_id"])

    def write(self, run_id: str, data: Tracked, *, status: str | None = None) -> None:
        items: list[tuple[str, dict[str, Any]]] = [
            ("params", {"key": k, "value": v}) for k, v in data.params.items()
        ]
        items += [("tags", {"key": k, "value": v}) for k, v in data.tags.items()]
        items += [
            (
                "metrics",
                {"key": k, "value": v, "step": step, "timestamp": int(at * 1000)},
            )
            for k, v, step, at in data.metrics
        ]
        # params and tags first, at most 100 of each per call, as MLflow's limits say
        while items:
            batch: dict[str, list[dict[str, Any]]] = {"params": [], "tags": [], "metrics": []}
            rest = []
            for kind, item in items:
                room = 100 if kind != "metrics" else _BATCH
                total = sum(len(v) for v in batch.values())
                if len(batch[kind]) < room and total < _BATCH:
                    batch[kind].append(item)
                else:
                    rest.append((kind, item))
            self._call("POST", "/runs/log-batch", {"run_id": run_id, **batch})
            items = rest
        for name, digest, _, _ in data.artifacts:
            path = Path(digest.removeprefix("file:"))
            experiment = self._experiments.get(run_id, "0")
            self._remote.call(
                "PUT",
                f"/{experiment}/{run_id}/artifacts/{name}",
                content=path.read_bytes(),
                prefix="/api/2.0/mlflow-artifacts/artifacts",
            )
        if status is not None:
            self._call(
                "POST",
                "/runs/update",
                {
                    "run_id": run_id,
                    "status": _STATUS.get(status, "FINISHED"),
                    "end_time": int(time.time() * 1000),
                },
            )


class _Files:
    """``put_file`` for artifacts: the file is uploaded when the run writes its batch."""

    def put_file(self, path: Path, *, move: bool = False) -> str:
        return f"file:{Path(path).resolve()}"


class RemoteTrackingWorkspace:
    """What an ActiveRun needs of a workspace, answered by a team server."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.store = SimpleNamespace(tracking=RemoteTracking(remote))
        self.blobs = _Files()

    def close(self) -> None:
        self.remote.close()


__all__ = ["RemoteTracking", "RemoteTrackingWorkspace"]
