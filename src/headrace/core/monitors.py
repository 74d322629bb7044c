"""Monitor declarations: what a monitor watches, against what, how often, which limits,
and what it does when one is crossed. Declared in the project's code
(``hr.monitors.monitor(...)``) or in ``monitors.yaml`` beside it; evaluated by
``headrace monitor run``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headrace.core.errors import DefinitionError
from headrace.core.origin import caller_module

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

#: classifier and regressor metrics a performance limit may name
CLASSIFIER_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss")
REGRESSOR_METRICS = ("mae", "rmse")
#: metrics where lower is better
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})


class MonitorDefinitionError(DefinitionError):
    """A monitor declared wrongly: names the monitor and the field."""


def seconds(value: str | float | int, where: str) -> float:
    """``"6h"``, ``"30m"``, ``"1d"``, ``"2w"`` or a number of seconds."""
    if isinstance(value, bool):
        raise MonitorDefinitionError(f"{where}: expected a duration such as '6h', got {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise MonitorDefinitionError(f"{where}: a duration must be > 0, got {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise MonitorDefinitionError(
            f"{where}: expected a duration such as '30m', '6h', '1d' or '2w', got {value!r}"
        )
    amount = float(match.group(1)) * _UNITS[match.group(2)]
    if amount <= 0:
        raise MonitorDefinitionError(f"{where}: a duration must be > 0, got {value!r}")
    return amount


_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,150}$")


@dataclass(frozen=True)
class Action:
    """What a monitor does when a limit is crossed: ``kind`` and its options."""

    kind: str  # webhook | email | log | retrain
    options: Mapping[str, Any] = field(default_factory=dict)


def webhook(url: str, *, secret_env: str | None = None, timeout: float = 10.0) -> Action:
    """POST the alert as JSON to ``url``; with ``secret_env``, the body is signed with
    HMAC-SHA256 under the secret read from that environment variable (header
    ``X-Headrace-Signature: sha256=<hex>``)."""
    if not isinstance(url, str) or not re.match(r"^https?://", url):
        raise MonitorDefinitionError(f"webhook(): expected an http(s) URL, got {url!r}")
    return Action("webhook", {"url": url, "secret_env": secret_env, "timeout": float(timeout)})


def email(
    to: str | Sequence[str],
    *,
    host: str = "localhost",
    port: int = 25,
    sender: str = "headrace@localhost",
    username_env: str | None = None,
    password_env: str | None = None,
    starttls: bool = False,
    timeout: float = 10.0,
) -> Action:
    """Send the alert by e-mail over SMTP (credentials from environment variables)."""
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise MonitorDefinitionError(f"email(): expected e-mail addresses, got {to!r}")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise MonitorDefinitionError(f"email(): port must be 1-65535, got {port!r}")
    return Action(
        "email",
        {
            "to": recipients,
            "host": host,
            "port": port,
            "sender": sender,
            "username_env": username_env,
            "password_env": password_env,
            "starttls": bool(starttls),
            "timeout": float(timeout),
        },
    )


def log(level: str = "warning") -> Action:
    """Write the alert to headrace's log (and the run's output)."""
    if level not in ("info", "warning", "error"):
        raise MonitorDefinitionError(f"log(): level is info, warning or error, not {level!r}")
    return Action("log", {"level": level})


def retrain(
    selection: str,
    *,
    branch: str | None = None,
    params: Mapping[str, Any] | None = None,
    partitions: str | None = None,
    alias: str = "challenger",
    promote_to: str | None = "champion",
) -> Action:
    """Start a pipeline run of ``selection`` (the model's asset) on a branch of its own,
    ``retrain/<monitor>/<alert>`` (or ``branch``, made from ``main`` when missing). The
    version it registers gets ``alias``; with ``promote_to``, it is then put up for
    that alias, and only a promotion the registry's policy passes merges the branch
    into ``main`` (an asset monitor's run merges through the branch's merge gates). A
    refusal leaves ``main`` untouched and keeps the branch for inspection."""
    if not isinstance(selection, str) or not selection.strip():
        raise MonitorDefinitionError(f"retrain(): expected an asset selection, got {selection!r}")
    if branch is not None and (not isinstance(branch, str) or not _BRANCH.match(branch)):
        raise MonitorDefinitionError(
            f"retrain(): branch {branch!r} is not a branch name (letters, digits, '.', '_', "
            "'-' and '/'); leave it out to retrain on a branch of its own"
        )
    if branch == "main":
        raise MonitorDefinitionError(
            "retrain(): branch 'main' is not allowed: a retrain runs on a branch of its own "
            "and reaches main only when its promotion passes; leave branch out"
        )
    if params is not None and not isinstance(params, Mapping):
        raise MonitorDefinitionError(f"retrain(): params must be a mapping, got {params!r}")
    return Action(
        "retrain",
        {
            "selection": selection,
            "branch": branch,
            "params": dict(params or {}),
            "partitions": partitions,
            "alias": alias,
            "promote_to": promote_to,
        },
    )


@dataclass(frozen=True)
class PerformanceLimit:
    """A metric the model must keep: at least ``min`` (at most, for lower-is-better
    metrics), or within ``max_drop`` of the version's own ``baseline`` run metric."""

    metric: str
    min: float | None = None
    max: float | None = None
    baseline: str | None = None
    max_drop: float | None = None


def performance(
    metric: str,
    *,
    min: float | None = None,
    max: float | None = None,
    baseline: str | None = None,
    max_drop: float | None = None,
) -> PerformanceLimit:
    known = (*CLASSIFIER_METRICS, *REGRESSOR_METRICS)
    if metric not in known:
        raise MonitorDefinitionError(
            f"performance(): unknown metric {metric!r}; expected one of {', '.join(known)}"
        )
    if max_drop is not None and baseline is None:
        raise MonitorDefinitionError(
            f"performance({metric!r}): max_drop needs baseline=, the run metric it is "
            "measured from (e.g. 'holdout_auc')"
        )
    if min is None and max is None and max_drop is None:
        raise MonitorDefinitionError(f"performance({metric!r}): give min=, max= or max_drop=")
    return PerformanceLimit(metric, min, max, baseline, max_drop)


@dataclass(frozen=True)
class Monitor:
    name: str
    #: a deployment's prediction log: the registered model and the alias it serves
    model: str | None = None
    alias: str = "champion"
    #: or each new version of an asset
    asset: str | None = None
    #: "training" (the model version's training data, through lineage) or an asset name
    reference: str = "training"
    #: a SQL condition on the reference rows, formatted with the training run's params
    #: (e.g. "month <= {train_months}")
    reference_where: str | None = None
    columns: tuple[str, ...] | None = None
    #: a time window ("1h", "1d") or a number of predictions per window
    window: float | int = 86400.0
    window_rows: int | None = None
    #: how often the scheduler evaluates it (a duration or a cron expression)
    schedule: str | None = None
    min_rows: int = 100
    drift_share: float = 0.5
    #: per column, (method, threshold or None): see ``headrace.core.drift.METHODS``
    tests: Mapping[str, tuple[str, float | None]] = field(default_factory=dict)
    prediction_drift: bool = True
    #: the training data's label column, for target drift against the logged labels
    target: str | None = None
    limits: tuple[PerformanceLimit, ...] = ()
    actions: tuple[Action, ...] = ()
    cooldown: float = 6 * 3600.0
    description: str | None = None

    @property
    def watches(self) -> str:
        return f"model {self.model}@{self.alias}" if self.model else f"asset {self.asset}"


#: Monitors declared by the loaded project, by name.
MONITORS: dict[str, Monitor] = {}
#: The module that declared each monitor (``declared_by`` picks a project's).
ORIGIN: dict[str, str] = {}


def declared_by(module: str | None) -> dict[str, Monitor]:
    """The monitors a project declared: in module ``module`` or its submodules, or in
    the running script (``__main__``); not those other imported modules declared."""
    return {
        name: monitor
        for name, monitor in MONITORS.items()
        if ORIGIN.get(name) == "__main__"
        or (
            module and (ORIGIN.get(name) == module or ORIGIN.get(name, "").startswith(module + "."))
        )
    }


_CRON_FIELD = re.compile(r"[0-9*/,\-A-Za-z?LW#]+")


def _schedule(where: str, value: Any) -> str | None:
    """A duration ("1h") or a cron expression ("0 6 * * *"), checked for its shape here;
    the scheduler reads it."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(seconds(value, f"{where}: schedule"))
    text = str(value)
    if _DURATION.match(text):
        return text
    fields = text.split()
    if len(fields) in (5, 6) and all(_CRON_FIELD.fullmatch(f) for f in fields):
        return text
    raise MonitorDefinitionError(
        f"{where}: schedule is a duration such as '1h' or a cron expression such as "
        f"'0 6 * * *', got {value!r}"
    )


def _test(where: str, column: str, test: Any) -> tuple[str, float | None]:
    """A column's test as given: a method name, ``{method, threshold}``, or an object
    with ``method`` and ``threshold`` (``headrace.drift.ColumnTest``)."""
    from headrace.core.drift import METHODS

    method: Any
    threshold: Any
    if isinstance(test, str):
        method, threshold = test, None
    elif isinstance(test, Mapping):
        method, threshold = test.get("method"), test.get("threshold")
    else:
        method, threshold = getattr(test, "method", None), getattr(test, "threshold", None)
    if method not in METHODS:
        raise MonitorDefinitionError(
            f"{where}: tests[{column!r}]: unknown drift method {method!r}; expected one of "
            f"{', '.join(METHODS)}"
        )
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0
    ):
        raise MonitorDefinitionError(
            f"{where}: tests[{column!r}]: threshold must be a number > 0, got {threshold!r}"
        )
    return str(method), None if threshold is None else float(threshold)


def monitor(
    name: str,
    *,
    model: str | None = None,
    alias: str = "champion",
    asset: str | None = None,
    reference: str = "training",
    reference_where: str | None = None,
    columns: Sequence[str] | None = None,
    window: str | float | int = "1d",
    schedule: str | None = None,
    min_rows: int = 100,
    drift_share: float = 0.5,
    tests: Mapping[str, Any] | None = None,
    prediction_drift: bool = True,
    target: str | None = None,
    limits: Sequence[PerformanceLimit] = (),
    actions: Sequence[Action] = (),
    cooldown: str | float = "6h",
    description: str | None = None,
) -> Monitor:
    """Declare a monitor (re-declaring a name replaces it). ``window`` is a duration
    (``"1d"``) or a number of predictions (``5000``)."""
    where = f"monitor({name!r})"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MonitorDefinitionError(f"monitor(): {name!r} is not a name (letters, digits, _.-)")
    if (model is None) == (asset is None):
        raise MonitorDefinitionError(f"{where}: watch exactly one of model= or asset=")
    if asset is not None and reference == "training":
        raise MonitorDefinitionError(
            f"{where}: an asset monitor needs reference= (an asset name, or 'previous' for "
            "the version before)"
        )
    if not 0 < drift_share <= 1:
        raise MonitorDefinitionError(f"{where}: drift_share must be in (0, 1], got {drift_share}")
    if not isinstance(min_rows, int) or min_rows < 1:
        raise MonitorDefinitionError(f"{where}: min_rows must be a positive integer")
    window_rows: int | None = None
    window_seconds = 0.0
    if isinstance(window, int) and not isinstance(window, bool):
        if window < 1:
            raise MonitorDefinitionError(f"{where}: window must be >= 1 prediction, got {window}")
        window_rows = window
    else:
        window_seconds = seconds(window, f"{where}: window")
    for limit in limits:
        if not isinstance(limit, PerformanceLimit):
            raise MonitorDefinitionError(
                f"{where}: limits must be made with headrace.monitors.performance(), got {limit!r}"
            )
    for action in actions:
        if not isinstance(action, Action):
            raise MonitorDefinitionError(
                f"{where}: actions must be made with headrace.monitors (webhook, email, log, "
                f"retrain), got {action!r}"
            )
    checked = {column: _test(where, column, test) for column, test in (tests or {}).items()}
    declared = Monitor(
        name=name,
        model=model,
        alias=alias,
        asset=asset,
        reference=reference,
        reference_where=reference_where,
        columns=tuple(columns) if columns is not None else None,
        window=window_seconds if window_rows is None else window_rows,
        window_rows=window_rows,
        schedule=_schedule(where, schedule),
        min_rows=min_rows,
        drift_share=drift_share,
        tests=checked,
        prediction_drift=prediction_drift,
        target=target,
        limits=tuple(limits),
        actions=tuple(actions),
        cooldown=seconds(cooldown, f"{where}: cooldown"),
        description=description,
    )
    MONITORS[name] = declared
    ORIGIN[name] = caller_module("headrace.core.monitors", "headrace.monitors")
    return declared
