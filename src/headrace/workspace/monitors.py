"""Monitors in YAML: ``monitors.yaml`` beside the project's code.

    monitors:
      - name: flight_delay_drift
        model: flight_delay             # or asset: flights_clean
        alias: champion
        reference_where: "month <= {train_months}"
        window: 5000                    # predictions a window, or a duration: 1d
        min_rows: 500
        tests: {distance: psi, carrier: {method: chi2, threshold: 0.01}}
        target: delayed
        limits:
          - {metric: roc_auc, baseline: holdout_auc, max_drop: 0.05}
        actions:
          - webhook: {url: "https://hooks.example.com/ml", secret_env: HOOK_SECRET}
          - email: {to: [ml-team@example.com], host: localhost, port: 25}
          - log: {level: warning}
          - retrain: {selection: flight_delay, params: {train_months: 8}}
        cooldown: 6h

Each entry takes the keyword arguments of ``headrace.monitors.monitor``; a mistake is
reported with the file, the monitor and the field when the monitors load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headrace.core import monitors as builders
from headrace.core.monitors import Monitor, MonitorDefinitionError

FILE = "monitors.yaml"
_ACTIONS = {
    "webhook": builders.webhook,
    "email": builders.email,
    "log": builders.log,
    "retrain": builders.retrain,
}
_FIELDS = {
    "name",
    "model",
    "alias",
    "asset",
    "reference",
    "reference_where",
    "columns",
    "window",
    "schedule",
    "min_rows",
    "drift_share",
    "tests",
    "prediction_drift",
    "target",
    "limits",
    "actions",
    "cooldown",
    "description",
}


def _action(where: str, entry: Any) -> builders.Action:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise MonitorDefinitionError(
            f"{where}: an action is one of {', '.join(_ACTIONS)} with its options, e.g. "
            "{log: {level: warning}}"
        )
    ((kind, options),) = entry.items()
    if kind not in _ACTIONS:
        raise MonitorDefinitionError(
            f"{where}: unknown action {kind!r}; expected one of {', '.join(_ACTIONS)}"
        )
    options = options or {}
    if not isinstance(options, dict):
        raise MonitorDefinitionError(f"{where}: {kind} takes a mapping of options")
    try:
        if kind == "webhook":
            return builders.webhook(**options)
        if kind == "email":
            return builders.email(**options)
        if kind == "retrain":
            return builders.retrain(**options)
        return builders.log(**options)
    except TypeError as exc:
        raise MonitorDefinitionError(f"{where}: {kind}: {exc}") from exc


def load_monitor_file(path: Path) -> list[Monitor]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MonitorDefinitionError(f"{path.name}: not valid YAML: {exc}") from exc
    entries = data.get("monitors") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise MonitorDefinitionError(f"{path.name}: expected a top-level 'monitors:' list")
    out = []
    for index, entry in enumerate(entries):
        where = f"{path.name}: monitors[{index}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise MonitorDefinitionError(f"{where}: each monitor is a mapping with a name")
        where = f"{path.name}: monitor {entry['name']!r}"
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            from headrace.core.graph import suggest

            raise MonitorDefinitionError(
                f"{where}: unknown field {unknown[0]!r}" + suggest(unknown[0], _FIELDS)
            )
        options = dict(entry)
        try:
            options["limits"] = [
                builders.performance(**limit) for limit in options.get("limits") or []
            ]
        except TypeError as exc:
            raise MonitorDefinitionError(f"{where}: limits: {exc}") from exc
        options["actions"] = [
            _action(f"{where}: actions[{i}]", a) for i, a in enumerate(options.get("actions") or [])
        ]
        try:
            out.append(builders.monitor(**options))
        except MonitorDefinitionError as exc:
            raise MonitorDefinitionError(f"{path.name}: {exc}") from exc
    return out
