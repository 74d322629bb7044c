"""Table definitions. Alembic migrations in ``migrations/versions`` create them.

Times are stored as UNIX seconds (double precision) so SQLite and PostgreSQL compare and
sort them the same way and cheaply.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: The Alembic revision this code expects; checked without importing Alembic.
SCHEMA_HEAD = "0018"

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("selection", Text, nullable=False),
    Column("params", Text, nullable=False, default="{}"),
    Column("partitions", Text, nullable=True),
    Column("branch", String(200), nullable=False, default="main"),
    Column("trigger", String(32), nullable=False),
    Column("executor", String(16), nullable=False),
    Column("max_concurrency", Integer, nullable=False),
    Column("force", Boolean, nullable=False, default=False),
    Column("host", String(255), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("plan", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    #: Tracking: the experiment a run belongs to, the run it is nested in, its name.
    Column("experiment_id", String(32), nullable=True),
    Column("parent_run_id", String(32), nullable=True),
    Column("name", String(200), nullable=True),
    #: Written every few seconds by the process executing a pipeline run.
    Column("heartbeat_at", Float, nullable=True),
    #: A tracked run deleted through the MLflow API (restorable); None: active.
    Column("deleted_at", Float, nullable=True),
    Index("ix_runs_created_at", "created_at"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_experiment", "experiment_id", "created_at"),
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("asset", String(200), nullable=False),
    Column("partition", String(200), nullable=True),
    Column("position", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("version_id", String(32), nullable=True),
    Column("cache_key", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    Index("ix_steps_asset", "asset"),
)

step_logs = Table(
    "step_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("step_key", String(512), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("stream", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_step_logs_run", "run_id", "step_key"),
)

asset_versions = Table(
    "asset_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("asset", String(200), nullable=False),
    Column("partition", String(200), nullable=False, default=""),
    Column("kind", String(16), nullable=False),
    Column("format", String(16), nullable=False),
    Column("flavor", String(16), nullable=False),
    Column("blob", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("row_count", BigInteger, nullable=True),
    Column("schema", Text, nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("step_key", String(512), nullable=True),
    Column("code_version", String(64), nullable=True),
    Column("params", Text, nullable=True),
    Column("cache_key", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("stats", Text, nullable=True),
    Column("primary_key", Text, nullable=True),
    Index("ix_asset_versions_asset", "asset", "partition", "created_at"),
    Index("ix_asset_versions_blob", "blob"),
)

version_inputs = Table(
    "version_inputs",
    metadata,
    Column("version_id", String(32), primary_key=True),
    Column("input_version_id", String(32), primary_key=True),
    Column("parameter", String(200), primary_key=True),
    Index("ix_version_inputs_input", "input_version_id"),
)

branch_heads = Table(
    "branch_heads",
    metadata,
    Column("branch", String(200), primary_key=True),
    Column("asset", String(200), primary_key=True),
    Column("partition", String(200), primary_key=True, default=""),
    Column("version_id", String(32), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("updated_at", Float, nullable=False),
)

branches = Table(
    "branches",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("from_branch", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("description", Text, nullable=True),
)

#: What each head of a branch was when the branch was created or last merged: the
#: base a merge compares both sides with.
branch_bases = Table(
    "branch_bases",
    metadata,
    Column("branch", String(200), primary_key=True),
    Column("asset", String(200), primary_key=True),
    Column("partition", String(200), primary_key=True),
    Column("version_id", String(32), nullable=False),
)

#: Every move of a branch head (and branch creation and deletion): the log, and what
#: reads "as of" a time look up.
branch_events = Table(
    "branch_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("branch", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("asset", String(200), nullable=False),
    Column("partition", String(200), nullable=False),
    Column("old_version_id", String(32), nullable=True),
    Column("new_version_id", String(32), nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("actor", String(200), nullable=True),
    Column("message", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_branch_events_head", "branch", "asset", "partition", "created_at"),
    Index("ix_branch_events_created_at", "created_at"),
)

#: Every check's outcome on every version: queried and plotted over time, and what the
#: merge gate and statistical process control read.
check_results = Table(
    "check_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", String(32), nullable=False),
    Column("asset", String(200), nullable=False),
    Column("partition", String(200), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("check_name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("columns", Text, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("observed", Text, nullable=True),
    Column("threshold", Text, nullable=False),
    Column("failing_rows", BigInteger, nullable=True),
    Column("failing_fraction", Float, nullable=True),
    Column("sample", Text, nullable=True),
    Column("message", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    #: The control limits the observed value was judged against (bounds of a statistic,
    #: learned limits of an anomaly check), for control charts.
    Column("lower", Float, nullable=True),
    Column("upper", Float, nullable=True),
    Index("ix_check_results_version", "version_id"),
    Index("ix_check_results_history", "asset", "check_name", "created_at"),
)

#: Versions kept off their branch because an error-severity check failed.
quarantine = Table(
    "quarantine",
    metadata,
    Column("version_id", String(32), primary_key=True),
    Column("branch", String(200), nullable=False),
    Column("asset", String(200), nullable=False),
    Column("partition", String(200), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),  # held | released | discarded
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
    Column("decided_by", String(200), nullable=True),
    Index("ix_quarantine_status", "status", "branch"),
)

#: Per-column profiles of a version (type, nulls, distinct values, quantiles, top values,
#: histogram), computed in one pass and kept with the version.
profiles = Table(
    "profiles",
    metadata,
    Column("version_id", String(32), primary_key=True),
    Column("asset", String(200), nullable=False),
    Column("partition", String(200), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("profile", Text, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_profiles_asset", "asset", "created_at"),
)

#: Experiments group runs for comparison.
experiments = Table(
    "experiments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    #: Deleted through the MLflow API (restorable); None: active.
    Column("deleted_at", Float, nullable=True),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", String(32), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

#: A run's params: written once, never changed.
run_params = Table(
    "run_params",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    #: The value as a number when it reads as one, so filters compare numbers.
    Column("num_value", Float, nullable=True),
    Index("ix_run_params_key", "key", "num_value"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

#: Every logged metric value (the history); NaN is kept as a flag, not as a value.
metric_values = Table(
    "metric_values",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Float, nullable=False),
    Index("ix_metric_values_run", "run_id", "key", "step"),
)

#: Each run's latest value of each metric (highest step, then newest): what search reads.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Float, nullable=False),
    Index("ix_latest_metrics_key", "key", "value"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("blob", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

#: Models an MLflow client logged (``log_model``); their files are ``run_artifacts``
#: rows under the model's id.
logged_models = Table(
    "logged_models",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("model_type", String(200), nullable=True),
    Column("status", String(32), nullable=False),
    Column("params", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_logged_models_experiment", "experiment_id"),
)

#: Registered models.
models = Table(
    "models",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=True),
)

#: A model's versions: the serialized model (a blob), its flavor and input signature,
#: the run that trained it and the data versions it was trained on.
model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("flavor", String(32), nullable=False),
    Column("blob", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("signature", Text, nullable=True),
    Column("model_class", String(300), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("asset_version_id", String(32), nullable=True),
    Column("data_versions", Text, nullable=False),
    Column("status", String(16), nullable=False),  # candidate|approved|production|retired
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=True),
    Index("ix_model_versions_run", "run_id"),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: The audit trail of the registry: versions registered, alias moves, lifecycle
#: transitions, promotion requests and decisions (who, when, from what to what, why).
model_events = Table(
    "model_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("alias", String(100), nullable=True),
    Column("version", Integer, nullable=True),
    Column("from_value", String(32), nullable=True),
    Column("to_value", String(32), nullable=True),
    Column("actor", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_model_events_name", "name", "created_at"),
)

#: Every scored row: the request, the model version and its role (served, canary or
#: shadow), the inputs and output, the latency, and the ground truth once it is known.
predictions = Table(
    "predictions",
    metadata,
    Column("id", String(64), primary_key=True),  # request id + row (+ role for shadows)
    Column("request_id", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("row", Integer, nullable=False),
    Column("key", String(200), nullable=True),
    Column("inputs", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("label", Text, nullable=True),
    Column("labeled_at", Float, nullable=True),
    # a classifier's probability of its positive class (binary models), for monitors
    Column("score", Float, nullable=True),
    Index("ix_predictions_model", "model", "created_at"),
    Index("ix_predictions_request", "request_id"),
    Index("ix_predictions_key", "model", "key"),
)


monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("monitor", String(200), nullable=False),
    Column("model", String(200), nullable=True),
    Column("version", Integer, nullable=True),
    Column("asset_version", String(64), nullable=True),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("labeled", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # ok | drift | breach | too_small
    Column("drift_share", Float, nullable=True),
    Column("evaluated_at", Float, nullable=False),
    Column("reference", Text, nullable=True),
    Index("ix_monitor_windows", "monitor", "end"),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("window_id", String(64), primary_key=True),
    # column_drift | dataset_drift | prediction_drift | target_drift | performance
    Column("kind", String(32), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("method", String(32), nullable=True),
    Column("value", Float, nullable=True),
    Column("p_value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("baseline", Float, nullable=True),
    Column("breached", Boolean, nullable=False),
    Column("estimated", Boolean, nullable=False),
)

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("monitor", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("window_id", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("suppressed", Boolean, nullable=False),
    Column("outcomes", Text, nullable=False),
    Index("ix_monitor_alerts", "monitor", "key", "created_at"),
)

monitor_references = Table(
    "monitor_references",
    metadata,
    Column("monitor", String(200), primary_key=True),
    Column("reference", String(300), primary_key=True),
    Column("profile", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)


principals = Table(
    "principals",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),  # person | service
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("disabled", Boolean, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("principal", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),  # SHA-256 of the secret part
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
    Index("ix_api_tokens_principal", "principal"),
)

role_grants = Table(
    "role_grants",
    metadata,
    Column("principal", String(200), primary_key=True),
    Column("namespace", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("granted_at", Float, nullable=False),
    Column("granted_by", String(200), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", Text, nullable=True),
    Column("outcome", String(32), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The key that sealed the entry (HMAC); NULL: an unkeyed (legacy SHA-256) entry.
    Column("key_id", String(64), nullable=True),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

#: Signed checkpoints of the audit chain's head (entry count, last seal), each also
#: kept as a blob in the object store (``blob``: its digest), outside the database.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("head", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("signature", String(64), nullable=False),
    Column("blob", String(64), nullable=False),
)


#: External lineage (OpenLineage events posted to the team server): jobs, datasets,
#: runs, which datasets each job read and wrote, and the raw events.
lineage_jobs = Table(
    "lineage_jobs",
    metadata,
    Column("namespace", String(500), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("producer", String(1000), nullable=True),
    Column("facets", Text, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

lineage_datasets = Table(
    "lineage_datasets",
    metadata,
    Column("namespace", String(500), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("facets", Text, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

lineage_runs = Table(
    "lineage_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("job_namespace", String(500), nullable=False),
    Column("job_name", String(500), nullable=False),
    Column("state", String(16), nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    Index("ix_lineage_runs_job", "job_namespace", "job_name"),
)

lineage_io = Table(
    "lineage_io",
    metadata,
    Column("job_namespace", String(500), primary_key=True),
    Column("job_name", String(500), primary_key=True),
    Column("direction", String(3), primary_key=True),  # in | out
    Column("dataset_namespace", String(500), primary_key=True),
    Column("dataset_name", String(500), primary_key=True),
    Column("last_run_id", String(64), nullable=True),
    Column("last_seen", Float, nullable=False),
    Index("ix_lineage_io_dataset", "dataset_namespace", "dataset_name"),
)

lineage_events = Table(
    "lineage_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=True),
    Column("event_type", String(16), nullable=True),
    Column("event_time", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("received_by", String(200), nullable=True),
    Column("body", Text, nullable=False),
    Index("ix_lineage_events_run", "run_id"),
)

#: Automation: the durable run queue workers take runs from.
run_queue = Table(
    "run_queue",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # assets | monitor
    Column("selection", Text, nullable=True),  # a selection, or the monitor's name
    Column("exclude", Text, nullable=True),
    Column("params", Text, nullable=False),
    Column("partitions", Text, nullable=True),
    Column("branch", String(200), nullable=False),
    Column("tags", Text, nullable=False),
    Column("trigger", String(300), nullable=False),
    #: what made it (schedule tick, file, version, alert): enqueued at most once
    Column("dedupe_key", String(500), nullable=True, unique=True),
    Column("status", String(16), nullable=False),  # queued | running | success | failed
    Column("priority", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("enqueued_at", Float, nullable=False),
    Column("not_before", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("worker", String(300), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("waiting", Text, nullable=True),  # why a queued run has not started
    Column("details", Text, nullable=False),
    Index("ix_run_queue_status", "status", "priority", "enqueued_at"),
    Index("ix_run_queue_run", "run_id"),
)

#: Automation: each schedule's, sensor's and freshness policy's switch and cursor.
automation_state = Table(
    "automation_state",
    metadata,
    Column("kind", String(16), primary_key=True),  # schedule | sensor | freshness
    Column("name", String(200), primary_key=True),
    Column("enabled", Boolean, nullable=True),  # None: as declared
    Column("cursor", Text, nullable=True),
    Column("evaluated_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)

#: Automation: the files a sensor has handled (by path, with the fingerprint seen).
sensor_files = Table(
    "sensor_files",
    metadata,
    Column("sensor", String(200), primary_key=True),
    Column("path", String(2000), primary_key=True),
    Column("fingerprint", String(300), nullable=False),
    Column("seen_at", Float, nullable=False),
)

#: Automation: failure notifications, kept until sent (retried) or given up.
notifications = Table(
    "notifications",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("event", String(32), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("dedupe_key", String(500), nullable=True, unique=True),
    Column("payload", Text, nullable=False),
    Column("channels", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("outcomes", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float, nullable=True),
    Index("ix_notifications_status", "status", "next_attempt_at"),
)

#: Rows a buffered writer (the prediction log, tracked runs) could not write because
#: the database refused them, with the reason; ``payload`` is the row as JSON.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("writer", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_dead_letters_writer", "writer", "id"),
)
