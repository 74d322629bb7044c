"""Registering, loading and governing models.

``log_model`` stores a fitted model as a new version of a registered model, with its
flavor, its input signature (from the training frame, else from the estimator when it
knows its features), the run that trained it and
the data versions it was trained on. ``load_model("name@alias")`` returns a model whose
``predict`` enforces that signature. Aliases move, versions change status, and each
change is recorded with who, when and why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headrace.io.estimators import signature_of
from headrace.io.models import dump_model, load_model_bytes
from headrace.io.signature import (
    Signature,
    call_predict,
    enforce,
    input_maker,
    model_input,
)
from headrace.runtime.identity import actor
from headrace.store.registry import ModelVersionRecord, NewModelVersion, RegistryError

if TYPE_CHECKING:
    from headrace.registry.promotion import BeforeMove
    from headrace.runtime.workspace import Workspace

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,199}")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,99}")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RegistryError(
            f"model name {name!r}: expected a letter, then letters, digits, '_', '.' or '-'"
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or alias == "latest":
        raise RegistryError(
            f"alias {alias!r}: expected a letter, then letters, digits, '_' or '-' "
            "('latest' is reserved: it always means the newest version)"
        )
    return alias


def parse_uri(uri: str) -> tuple[str, str | None, int | None]:
    """``name@alias`` → (name, alias, None); ``name/3`` → (name, None, 3); ``name``."""
    if not isinstance(uri, str) or not uri:
        raise RegistryError(f"model reference {uri!r}: expected NAME, NAME@ALIAS or NAME/VERSION")
    if "@" in uri:
        name, _, alias = uri.partition("@")
        return check_name(name), alias or None, None
    if "/" in uri:
        name, _, number = uri.partition("/")
        if not number.isdigit() or int(number) < 1:
            raise RegistryError(f"model reference {uri!r}: the version must be a number ≥ 1")
        return check_name(name), None, int(number)
    return check_name(uri), None, None


def register_model(
    ws: Workspace,
    model: Any,
    name: str,
    *,
    frame: Any = None,
    run_id: str | None = None,
    asset_version_id: str | None = None,
    data_versions: Sequence[str] = (),
    flavor: str | None = None,
    description: str | None = None,
) -> ModelVersionRecord:
    check_name(name)
    chosen, model_class, data = dump_model(model, flavor)
    signature = signature_of(model, frame)
    known = [ws.store.versions.get(v).id for v in data_versions]
    blob = ws.blobs.put_bytes(data)
    return ws.store.registry.register(
        NewModelVersion(
            name=name,
            flavor=chosen,
            blob=blob,
            size=len(data),
            signature=None if signature is None else signature.to_dict(),
            model_class=model_class,
            run_id=run_id,
            asset_version_id=asset_version_id,
            data_versions=known,
            description=description,
        ),
        actor=actor(),
    )


def resolve(ws: Workspace, uri: str) -> ModelVersionRecord:
    name, alias, number = parse_uri(uri)
    if number is not None:
        return ws.store.registry.version(name, number)
    return ws.store.registry.resolve(name, alias)


@dataclass
class LoadedModel:
    """A registered model version, ready to predict; ``predict`` enforces the signature."""

    record: ModelVersionRecord
    model: Any

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def version(self) -> int:
        return self.record.version

    @property
    def signature(self) -> Signature | None:
        return self._signature

    def _input(self, data: Any) -> Any:
        signature = self.signature
        if signature is None:
            return data
        return model_input(self.model, enforce(signature, data))

    def __post_init__(self) -> None:
        data = self.record.signature
        self._signature = None if data is None else Signature.from_dict(data)
        self._as_input: Any = None  # how tables reach this model, decided on first use

    def _prepared(self, table: Any) -> Any:
        if self._as_input is None:
            self._as_input = input_maker(self.model, table)
        return self._as_input(table)

    def check(self, data: Any) -> Any:
        """``data`` fitted to the signature (a polars frame of its columns), or as given
        when the version has none; raises ``SignatureError`` naming the column."""
        signature = self.signature
        return data if signature is None else enforce(signature, data)

    def predict_checked(self, table: Any) -> Any:
        """Predict on what :meth:`check` returned (several checked frames may be
        concatenated first: the server's micro-batches)."""
        if self.signature is None:
            return self.model.predict(table)
        return call_predict(self.model.predict, self._prepared(table))

    def predict(self, data: Any) -> Any:
        if self.signature is None:
            return self.model.predict(data)
        return call_predict(self.model.predict, self._input(data))

    def predict_proba(self, data: Any) -> Any:
        method = getattr(self.model, "predict_proba", None)
        if method is None:
            raise RegistryError(f"{self.name} version {self.version} has no predict_proba()")
        if self.signature is None:
            return method(data)
        return call_predict(method, self._input(data))

    def __repr__(self) -> str:
        return (
            f"<LoadedModel {self.name}/{self.version} {self.record.flavor} "
            f"{self.record.model_class}>"
        )


def load_model(
    ws: Workspace, uri: str, *, allow_pickle: bool = False, trusted: Sequence[str] = ()
) -> LoadedModel:
    record = resolve(ws, uri)
    data = ws.blobs.get_bytes(record.blob)
    return LoadedModel(
        record=record, model=load_model_bytes(data, allow_pickle=allow_pickle, trusted=trusted)
    )


def set_alias(
    ws: Workspace,
    name: str,
    alias: str,
    version: int,
    *,
    reason: str | None = None,
    override: bool = False,
    role: str | None = None,
    before_move: BeforeMove | None = None,
) -> int | None:
    """Point ``alias`` at ``version``; returns the version it pointed at before.

    A guarded alias (``champion``, or one a promotion policy promotes to) moves only as
    a promotion: its policy judges the version, and a refusal raises
    :class:`~headrace.registry.errors.GuardedAliasError`. ``override=True`` (with a
    ``reason``, for a maintainer or admin: ``role`` is the caller's, None means whoever
    acts locally) moves it past the refusal, recording the rules it overrode.
    """
    from headrace.registry.promotion import guarded, move_guarded

    check_name(name)
    check_alias(alias)
    if alias in guarded(ws, name):
        return move_guarded(
            ws,
            name,
            alias,
            version,
            reason=reason,
            override=override,
            role=role,
            before_move=before_move,
        )
    return ws.store.registry.set_alias(name, alias, version, actor=actor(), reason=reason)


def rollback(
    ws: Workspace, name: str, alias: str = "champion", *, reason: str | None = None
) -> tuple[int, int]:
    registry = ws.store.registry
    who = actor()
    current, previous = registry.rollback(
        check_name(name), check_alias(alias), actor=who, reason=reason or "rollback"
    )
    if alias == "champion":  # the lifecycle follows: the restored version serves again
        note = f"champion rolled back from version {current}"
        if registry.version(name, previous).status == "approved":
            registry.transition(name, previous, "production", actor=who, reason=note)
        if registry.version(name, current).status == "production":
            registry.transition(name, current, "approved", actor=who, reason=note)
    return current, previous


def transition(
    ws: Workspace, name: str, version: int, status: str, *, reason: str | None = None
) -> str:
    return ws.store.registry.transition(
        check_name(name), version, status, actor=actor(), reason=reason
    )


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from: its run (params, metrics) and its data (each
    version's asset, rows and check results)."""

    model: ModelVersionRecord
    run: Any
    params: dict[str, str]
    metrics: dict[str, float]
    data: list[tuple[Any, int, int]]  # (version record, failed error checks, checks)


def lineage(ws: Workspace, uri: str) -> Lineage:
    record = resolve(ws, uri)
    run = ws.store.runs.get(record.run_id) if record.run_id else None
    params = ws.store.tracking.params(record.run_id) if record.run_id else {}
    metrics = ws.store.tracking.metrics(record.run_id) if record.run_id else {}
    ids = list(record.data_versions)
    data = []
    for version_id in ids:
        version = ws.store.versions.get(version_id)
        results = ws.store.quality.results(version_id)
        failed = sum(1 for r in results if not r.passed and r.severity == "error")
        data.append((version, failed, len(results)))
    return Lineage(model=record, run=run, params=params, metrics=metrics, data=data)
