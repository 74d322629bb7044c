"""Model serving: single-row requests to ``headrace serve``, against ``mlflow models serve``.

The workload of ``../shared/peers/tracking-serving/`` (``train_log.py``, ``post.lua``,
``req_split.json``; see ``bench/peers/serving/_common.py``): scikit-learn's breast-cancer
data (30 named features), ``StandardScaler`` + ``LogisticRegression`` fitted on all of
it; one row in the ``dataframe_split`` format, ``POST /invocations`` with
``Content-Type: application/json``.

- **headrace** (project venv): a new workspace in a temp dir, the model registered with
  ``hr.log_model(model, "cancer", frame=X)`` and alias ``champion`` set to version 1;
  ``headrace serve cancer@champion --port P --workers N`` run with cwd there, prediction
  logging on (the default).
- **MLflow** (its own venv, ``bench/peers/envs.py``): the same model logged with
  ``mlflow.sklearn.log_model`` to a SQLite tracking store; ``mlflow models serve -m
  runs:/<run>/model --env-manager local -p P -w N`` (its uvicorn from that venv). MLflow
  does not log predictions.

Each server is a fresh process (its own session); the bench waits for ``GET /ping`` to
answer 200 (``start s``), sends one check request (both must predict the same class),
warms up for ``warmup`` seconds at concurrency 16, then loads it for ``duration``
seconds at each concurrency (1 and 16 keep-alive connections) with Debian's ``wrk``
(one thread; ``bench/peers/serving/wrk_post.lua``), or, when ``wrk`` is not installed,
the stdlib load generator ``bench/peers/serving/loadgen.py`` (labelled). Figures per
phase: requests/s (2xx responses / duration), p50 and p99 latency from the load generator,
errors (socket errors, timeouts, non-2xx), and the server's CPU time per request (all
processes of its session, from ``/proc``). Servers with 1 and 2 workers (the machine's
cores) run one after the other, headrace then MLflow, the load generator on the same
cores.

After each headrace run the server is stopped with SIGTERM (graceful: uvicorn drains
and the prediction log flushes) and, once it has exited, a fresh process opens the
workspace and counts the log's rows (``ws.store.predictions.count``) and lists their
request ids. Every request carries its own ``X-Request-Id``, which headrace logs and
echoes, so the bench checks the log exactly: no request answered 200 is missing, none
is logged twice, and the only extra rows are requests the load generator sent but
stopped waiting for (wrk abandons the requests in flight when its time is up; the
server still answers and logs them).

Targets (issue 6): headrace >= 10x MLflow's throughput at concurrency 16, and p99
< 10 ms at concurrency 1, with prediction logging on; every prediction logged.

Usage: ``python bench/run_all.py --only serving`` (or ``python bench/serving.py
[--no-peers] [--workers 1,2] [--duration 10] [--warmup 2] [--loadgen auto|wrk|python]
[--headrace-args="--batch-max-size 16"]``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import envs

RUNNERS = Path(__file__).resolve().parent / "peers" / "serving"
PEERS = ("mlflow",)
TARGET_X = 10.0
TARGET_P99_S = 0.010
CONCURRENCY = (1, 16)
WORKERS = (1, 2)
DURATION_S = 10
WARMUP_S = 2
WARMUP_CONCURRENCY = 16
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30
RUNNER_TIMEOUT_S = 600.0
_SCRUB_PREFIXES = ("HEADRACE_", "MLFLOW_")
_SCRUB = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DO_NOT_TRACK")
_RUNNER_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONUNBUFFERED": "1"}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _say(message: str) -> None:
    print(f"[bench-serving] {message}", file=sys.stderr, flush=True)


def peer_names(peers: list[str] | None) -> list[str]:
    """The serving peers among ``peers`` (others ignored)."""
    return [p for p in PEERS if p in (peers or [])]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith(_SCRUB_PREFIXES)
    }
    env.update(_RUNNER_ENV)
    env.update(extra or {})
    return env


def _headrace_env() -> dict[str, str]:
    """The environment of headrace's runner and server: the ``src`` of the checkout this
    bench is in comes first, so a work tree measures its own code, not whatever
    headrace the interpreter has installed."""
    return _env({"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})


def _runner(python: str, tool: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    cmd = [python, str(RUNNERS / f"{tool}_run.py"), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUNNER_TIMEOUT_S)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout[-1500:] + "\n" + proc.stderr[-2500:]).strip()
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server's processes ---------------------------------------------------------------------


def _session(sid: int) -> list[list[str]]:
    """The ``/proc/PID/stat`` fields after the command name of every process in session
    ``sid`` (index 3: session, 11/12: user/system ticks, 21: RSS pages)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        if len(fields) > 21 and fields[3] == str(sid):
            out.append(fields)
    return out


def session_cpu_s(sid: int) -> float:
    """CPU seconds used so far by the live processes of session ``sid``."""
    return sum(int(f[11]) + int(f[12]) for f in _session(sid)) / _CLOCK_TICKS


def session_rss_mib(sid: int) -> float:
    return sum(int(f[21]) for f in _session(sid)) * _PAGE / 2**20


@dataclass
class Server:
    """One server process, started in its own session so all its workers can be found."""

    label: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    ready_path: str = "/ping"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as fh:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.cwd,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Seconds from the spawn to ``GET`` :attr:`ready_path` answering 200."""
        assert self.proc is not None
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited {self.proc.returncode} before it was ready:\n"
                    + self.tail()
                )
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started_at
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.label} not ready after {timeout:.0f} s:\n{self.tail()}")

    @property
    def sid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> dict[str, Any]:
        """SIGTERM to the server's main process; wait for it and its workers to exit.
        Whatever is left of the session after that is terminated, then killed."""
        assert self.proc is not None
        started = time.perf_counter()
        graceful = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                graceful = False
        # Helpers such as multiprocessing's resource tracker exit on their own once the
        # main process has gone; give them a moment before calling anything left over.
        for _ in range(100):
            if not graceful or not _session(self.sid):
                break
            time.sleep(0.1)
        leftover = len(_session(self.sid))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _session(self.sid):
                break
            graceful = False
            try:
                os.killpg(self.sid, sig)
            except ProcessLookupError:
                break
            for _ in range(50):
                if not _session(self.sid):
                    break
                time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return {
            "returncode": self.proc.returncode,
            "graceful": graceful,
            "left_running": leftover,
            "stop_s": round(time.perf_counter() - started, 3),
        }


# --- the load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadGen:
    kind: str  # "wrk" or "python"
    path: str
    version: str

    @property
    def label(self) -> str:
        if self.kind == "wrk":
            return f"wrk {self.version} (1 thread)"
        return "bench/peers/serving/loadgen.py (Python asyncio; wrk not installed)"


def find_loadgen(choice: str = "auto") -> LoadGen:
    wrk = shutil.which("wrk")
    if choice in ("auto", "wrk") and wrk:
        proc = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        words = (proc.stdout + proc.stderr).split()
        version = words[1] if len(words) > 1 and words[0] == "wrk" else "?"
        return LoadGen("wrk", wrk, version)
    if choice == "wrk":
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --loadgen python")
    _say("wrk not found (apt-get install wrk): using the Python load generator")
    return LoadGen("python", sys.executable, sys.version.split()[0])


def load(
    gen: LoadGen,
    url: str,
    body: Path,
    *,
    connections: int,
    duration: int,
    prefix: str,
    out: Path,
) -> tuple[dict[str, Any], list[str]]:
    """One load phase: the generator's summary and the request ids answered with 200."""
    if gen.kind == "wrk":
        cmd = [gen.path, "-t1", f"-c{connections}", f"-d{duration}s"]
        cmd += [f"--timeout={REQUEST_TIMEOUT_S}s", "-s", str(RUNNERS / "wrk_post.lua"), url]
        env = _env(
            {"HR_BENCH_BODY": str(body), "HR_BENCH_PREFIX": prefix, "HR_BENCH_OUT": str(out)}
        )
    else:
        cmd = [gen.path, str(RUNNERS / "loadgen.py"), "--url", url, "--body", str(body)]
        cmd += ["--connections", str(connections), "--duration", str(duration)]
        cmd += ["--prefix", prefix, "--out", str(out), "--timeout", str(REQUEST_TIMEOUT_S)]
        env = _env()
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + REQUEST_TIMEOUT_S + 60
    )
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-1500:]}")
    summary: dict[str, Any] = json.loads(out.read_text())
    ids_file = Path(str(out) + ".ids")
    answered = ids_file.read_text().split() if ids_file.exists() else []
    return summary, answered


def _phase(summary: dict[str, Any], cpu_s: float, connections: int) -> dict[str, Any]:
    seconds = summary["duration_us"] / 1e6
    lat = summary["latency_us"]
    sockets = summary["socket_errors"]
    non_2xx = sum(v for k, v in summary["statuses"].items() if not k.startswith("2"))
    requests = summary["requests"]
    answered_2xx = requests - non_2xx
    return {
        "connections": connections,
        "requests": requests,
        "duration_s": round(seconds, 3),
        "rps": round(answered_2xx / seconds, 1) if seconds else 0.0,
        "min_ms": round(lat["min"] / 1000, 2),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "p999_ms": round(lat["p999"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "mean_ms": round(lat["mean"] / 1000, 3),
        "errors": sum(sockets.values()) + non_2xx,
        "socket_errors": sockets,
        "statuses": summary["statuses"],
        "sent": sum(summary["sent"].values()),
        "server_cpu_s": round(cpu_s, 3),
        "cpu_ms_per_request": round(1000 * cpu_s / requests, 3) if requests else None,
    }


def _check(base: str, body: Path) -> dict[str, Any]:
    """One request before the load: the response, and that it is what both must say."""
    request = urllib.request.Request(
        base + "/invocations",
        data=body.read_bytes(),
        headers={"Content-Type": "application/json", "X-Request-Id": "check-1-1"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as r:
        data = json.loads(r.read())
        echoed = r.headers.get("x-request-id")
    return {
        "predictions": data.get("predictions") if isinstance(data, dict) else data,
        "first_request_ms": round(1000 * (time.perf_counter() - started), 1),
        "echoed_id": echoed,
    }


def drive(
    server: Server,
    gen: LoadGen,
    body: Path,
    work: Path,
    *,
    concurrency: tuple[int, ...],
    duration: int,
    warmup: int,
) -> dict[str, Any]:
    """Start ``server``, check it, warm it up, load it at each concurrency, stop it."""
    record: dict[str, Any] = {"label": server.label, "cmd": server.cmd, "ok": False}
    answered: list[str] = []
    sent: dict[str, int] = {}
    url = server.base + "/invocations"
    server.start()
    try:
        record["start_s"] = round(server.wait_ready(), 2)
        record["check"] = _check(server.base, body)
        if record["check"]["echoed_id"] == "check-1-1":
            answered.append("check-1-1")
        sent["check"] = 1
        phases: dict[str, Any] = {}
        plan = [("warmup", WARMUP_CONCURRENCY, warmup)] if warmup > 0 else []
        plan += [(f"c{c}", c, duration) for c in concurrency]
        for name, connections, seconds in plan:
            cpu0 = session_cpu_s(server.sid)
            summary, ids = load(
                gen,
                url,
                body,
                connections=connections,
                duration=seconds,
                prefix=name,
                out=work / f"{server.label}-{name}.json",
            )
            phases[name] = _phase(summary, session_cpu_s(server.sid) - cpu0, connections)
            answered += ids
            sent[name] = phases[name]["sent"]
            p = phases[name]
            _say(
                f"{server.label} {name}: {p['rps']:,.0f} req/s, p50 {p['p50_ms']:.2f} ms, "
                f"p99 {p['p99_ms']:.2f} ms, {p['errors']} errors, "
                f"{p['cpu_ms_per_request'] or 0:.2f} ms CPU/request"
            )
        record["phases"] = phases
        record["rss_mib"] = round(session_rss_mib(server.sid), 1)
        record["processes"] = len(_session(server.sid))
        record["ok"] = True
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        record["error"] = str(exc)
        _say(f"{server.label}: FAILED: {str(exc).splitlines()[0]}")
    finally:
        record["stop"] = server.stop()
    record["answered_ids"] = answered
    record["sent_by_phase"] = sent
    return record


# --- the prediction log check --------------------------------------------------------------------


def check_log(
    record: dict[str, Any], workspace: Path, work: Path, connections: dict[str, int]
) -> dict[str, Any]:
    """Match the log's rows to the requests: none answered missing, none twice, extras
    only among requests sent and abandoned in flight (at most one per connection)."""
    ids_file = work / f"{record['label']}-logged.ids"
    counted = _runner(
        sys.executable,
        "headrace",
        ["count", "--dir", str(workspace), "--ids-out", str(ids_file)],
        _headrace_env(),
    )
    logged = ids_file.read_text().split()
    unique = set(logged)
    answered = set(record["answered_ids"])
    sent = record["sent_by_phase"]
    missing = answered - unique
    extra = unique - answered

    def was_sent(rid: str) -> bool:
        phase, _, rest = rid.partition("-")
        _, _, number = rest.partition("-")
        return phase in sent and number.isdigit() and 1 <= int(number) <= sent[phase]

    unknown = sorted(r for r in extra if not was_sent(r))
    in_flight_max = sum(connections.get(p, 0) for p in sent)
    out = {
        "rows": counted["rows"],
        "listed": counted["listed"],
        "unique_ids": len(unique),
        "answered_200": len(answered),
        "missing": len(missing),
        "duplicated": len(logged) - len(unique),
        "in_flight_logged": len(extra) - len(unknown),
        "in_flight_max": in_flight_max,
        "unknown_ids": len(unknown),
        "versions": counted["versions"],
        "roles": counted["roles"],
        "examples_missing": sorted(missing)[:5],
        "examples_unknown": unknown[:5],
    }
    out["exact"] = (
        counted["rows"] == counted["listed"] == len(unique) == len(answered) + len(extra)
        and not missing
        and not unknown
        and len(extra) <= in_flight_max
    )
    return out


# --- all of it ----------------------------------------------------------------------------------


def _git(*args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True
    )
    return proc.stdout.strip() if proc.returncode == 0 else "?"


def _headrace_server(
    base: Path, work: Path, workers: int, extra_args: tuple[str, ...] = ()
) -> tuple[Server, Path]:
    workspace = work / f"headrace-w{workers}"
    shutil.copytree(base, workspace)
    exe = Path(sys.executable).with_name("headrace")
    if not exe.exists():
        found = shutil.which("headrace")
        if not found:
            raise RuntimeError(f"no headrace executable next to {sys.executable} or on PATH")
        exe = Path(found)
    port = _free_port()
    cmd = [str(exe), "serve", "cancer@champion", "--port", str(port), "--workers", str(workers)]
    cmd += extra_args
    log = work / "logs" / f"headrace-w{workers}.log"
    server = Server(f"headrace-w{workers}", cmd, workspace, _headrace_env(), port, log)
    return server, workspace


def _mlflow_server(python: str, setup: dict[str, Any], work: Path, workers: int) -> Server:
    venv_bin = Path(python).parent
    env = _env(
        {
            "MLFLOW_TRACKING_URI": setup["tracking_uri"],
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(venv_bin.parent),
        }
    )
    port = _free_port()
    cmd = [str(venv_bin / "mlflow"), "models", "serve", "-m", setup["model_uri"]]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    log = work / "logs" / f"mlflow-w{workers}.log"
    return Server(f"mlflow-w{workers}", cmd, work / "mlflow", env, port, log)


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in ("answered_ids",)}
    return out


def run(
    *,
    peers: list[str] | None,
    workers: tuple[int, ...] = WORKERS,
    concurrency: tuple[int, ...] = CONCURRENCY,
    duration: int = DURATION_S,
    warmup: int = WARMUP_S,
    loadgen: str = "auto",
    headrace_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """headrace and the named serving peers (None or []: headrace only), side by side."""
    gen = find_loadgen(loadgen)
    names = peer_names(peers)
    work = Path(tempfile.mkdtemp(prefix="hr-bench-serving-"))
    load_avg = [round(os.getloadavg()[0], 2)]
    setups: dict[str, Any] = {}
    failed: dict[str, str] = {}
    runs: list[dict[str, Any]] = []
    connections = {"check": 1, "warmup": WARMUP_CONCURRENCY} | {f"c{c}": c for c in concurrency}
    try:
        body = work / "req_split.json"
        base = work / "headrace-base"
        _say("headrace: a new workspace, the model registered, alias champion")
        setups["headrace"] = _runner(
            sys.executable,
            "headrace",
            ["setup", "--dir", str(base), "--body", str(body)],
            _headrace_env(),
        )
        pythons: dict[str, str] = {}
        for name in names:
            status = envs.ensure_env(name)
            if not (status.ok and status.python):
                failed[name] = f"venv: {status.error}"
                continue
            pythons[name] = status.python
            _say(f"{name}: logging the model in its own venv")
            try:
                setups[name] = _runner(
                    status.python,
                    name,
                    ["setup", "--dir", str(work / name), "--body", str(body)],
                    _env(),
                )
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failed[name] = str(exc)
                _say(f"{name}: setup FAILED: {str(exc).splitlines()[0]}")
        for n in workers:
            server, workspace = _headrace_server(base, work, n, headrace_args)
            _say(f"headrace: serve with {n} worker(s) on port {server.port}")
            record = drive(
                server, gen, body, work, concurrency=concurrency, duration=duration, warmup=warmup
            )
            record.update(tool="headrace", workers=n)
            if "--no-log" in headrace_args:
                record["log"] = None  # nothing to check
            elif record["stop"]["returncode"] is not None:
                try:
                    record["log"] = check_log(record, workspace, work, connections)
                    lg = record["log"]
                    _say(
                        f"headrace-w{n} prediction log: {lg['rows']:,} rows, "
                        f"{lg['answered_200']:,} answered 200, {lg['missing']} missing, "
                        f"{lg['duplicated']} duplicated, {lg['in_flight_logged']} in flight"
                    )
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                    record["log"] = {"error": str(exc), "exact": False}
            runs.append(_strip(record))
            load_avg.append(round(os.getloadavg()[0], 2))
            for name in names:
                if name in failed:
                    continue
                server = _mlflow_server(pythons[name], setups[name], work, n)
                _say(f"{name}: serve with {n} worker(s) on port {server.port}")
                record = drive(
                    server,
                    gen,
                    body,
                    work,
                    concurrency=concurrency,
                    duration=duration,
                    warmup=warmup,
                )
                record.update(tool=name, workers=n)
                runs.append(_strip(record))
                load_avg.append(round(os.getloadavg()[0], 2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results: dict[str, Any] = {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "src_changed": bool(_git("status", "--porcelain", "--", "src")),
        "headrace_args": list(headrace_args),
        "prediction_logging": "--no-log" not in headrace_args,
        "loadgen": {"kind": gen.kind, "version": gen.version, "label": gen.label},
        "duration_s": duration,
        "warmup_s": warmup,
        "concurrency": list(concurrency),
        "workers": list(workers),
        "cpus": os.cpu_count(),
        "loadavg": load_avg,
        "setup": setups,
        "failed": failed,
        "runs": runs,
    }
    results["verdict"] = _verdict(results)
    return results


def _find(results: dict[str, Any], tool: str, workers: int) -> dict[str, Any] | None:
    runs: list[dict[str, Any]] = results["runs"]
    for r in runs:
        if r["tool"] == tool and r["workers"] == workers and r.get("ok"):
            return r
    return None


def _verdict(results: dict[str, Any]) -> dict[str, Any]:
    top = max(results["concurrency"])
    low = min(results["concurrency"])
    out: dict[str, Any] = {"by_workers": {}}
    x_ok: list[bool] = []
    p99_ok: list[bool] = []
    log_ok: list[bool] = []
    errors_ok: list[bool] = []
    for n in results["workers"]:
        mine = _find(results, "headrace", n)
        entry: dict[str, Any] = {}
        if mine is not None:
            c_top, c_low = mine["phases"][f"c{top}"], mine["phases"][f"c{low}"]
            entry["rps"] = c_top["rps"]
            entry["p99_c1_ms"] = c_low["p99_ms"]
            entry["p99_ok"] = c_low["p99_ms"] < 1000 * TARGET_P99_S
            if not results["prediction_logging"]:
                entry["p99_ok"] = None  # not the target's condition
            p99_ok.append(entry["p99_ok"] is not False)
            entry["errors"] = sum(p["errors"] for p in mine["phases"].values())
            errors_ok.append(entry["errors"] == 0)
            if results["prediction_logging"]:
                entry["log_exact"] = bool((mine.get("log") or {}).get("exact"))
                log_ok.append(entry["log_exact"])
            peer = _find(results, "mlflow", n)
            if peer is not None:
                theirs = peer["phases"][f"c{top}"]["rps"]
                entry["mlflow_rps"] = theirs
                entry["x_mlflow"] = round(c_top["rps"] / theirs, 1) if theirs else None
                entry["x_ok"] = bool(theirs) and c_top["rps"] >= TARGET_X * theirs
                entry["predictions_agree"] = (
                    peer["check"]["predictions"] == mine["check"]["predictions"]
                )
                x_ok.append(entry["x_ok"])
        else:
            p99_ok.append(False)
            log_ok.append(False)
        out["by_workers"][str(n)] = entry
    out["x_ok"] = all(x_ok) if x_ok else None
    out["p99_ok"] = all(p99_ok)
    out["log_ok"] = all(log_ok) if results["prediction_logging"] else None
    out["errors_ok"] = all(errors_ok) and len(errors_ok) == len(results["workers"])
    out["ok"] = (
        out["p99_ok"] and out["log_ok"] is True and out["errors_ok"] and out["x_ok"] is not False
    )
    return out


# --- the report ---------------------------------------------------------------------------------


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def report(results: dict[str, Any]) -> str:
    top = max(results["concurrency"])
    setup = results["setup"]
    hr = setup.get("headrace", {})
    lines = [
        "serving: one row of scikit-learn's breast-cancer data (30 features) as dataframe_split, "
        "POST /invocations, keep-alive connections on loopback",
        f"load generator: {results['loadgen']['label']}; {results['duration_s']} s per "
        f"concurrency after a {results['warmup_s']} s warm-up at {WARMUP_CONCURRENCY}; "
        f"{results['cpus']} CPUs shared by the server and the load generator; load average "
        + " / ".join(f"{x:.1f}" for x in results["loadavg"]),
        f"headrace {hr.get('version', '?')} at {results['commit']}"
        + (" with uncommitted src/ changes" if results["src_changed"] else "")
        + (
            f", `headrace serve {' '.join(results['headrace_args'])}`"
            if results["headrace_args"]
            else ""
        )
        + (
            ", logs every prediction (checked after a graceful stop); "
            if results["prediction_logging"]
            else ", prediction logging OFF; "
        )
        + (
            f"MLflow {setup['mlflow']['version']} (`mlflow models serve --env-manager local`) "
            "logs none"
            if "mlflow" in setup
            else "no MLflow in this run"
        ),
        "2xx/s = responses with status 2xx per second; x mlflow = headrace / MLflow, same "
        "workers and concurrency; CPU ms/req = the server's processes' CPU time per answered "
        "request",
    ]
    header = (
        f"{'server':<14}{'workers':>8}{'conc':>6}{'2xx/s':>10}{'x mlflow':>10}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'CPU ms/req':>12}{'start s':>9}{'RSS MiB':>9}"
    )
    lines += ["", header, "-" * len(header)]
    for r in results["runs"]:
        label = r["tool"]
        if not r.get("ok"):
            lines.append(
                f"{label:<14}{r['workers']:>8}  failed: {str(r.get('error')).splitlines()[0][:80]}"
            )
            continue
        peer = _find(results, "mlflow", r["workers"]) if r["tool"] == "headrace" else None
        for i, c in enumerate(results["concurrency"]):
            p = r["phases"][f"c{c}"]
            x = "-"
            if peer is not None and peer["phases"][f"c{c}"]["rps"]:
                x = f"{p['rps'] / peer['phases'][f'c{c}']['rps']:.1f}"
            cpu = f"{p['cpu_ms_per_request']:.2f}" if p["cpu_ms_per_request"] else "-"
            start = f"{r['start_s']:.1f}" if i == 0 else ""
            rss = f"{r['rss_mib']:.0f}" if i == 0 else ""
            lines.append(
                f"{label if i == 0 else '':<14}{r['workers'] if i == 0 else '':>8}{c:>6}"
                f"{p['rps']:>10,.0f}{x:>10}{p['p50_ms']:>9.2f}{p['p99_ms']:>9.2f}"
                f"{p['max_ms']:>9.1f}{p['errors']:>8}{cpu:>12}{start:>9}{rss:>9}"
            )
    for name, error in results["failed"].items():
        lines.append(f"{name:<14}failed: {error.splitlines()[0][:100]}")
    lines.append("")
    for r in results["runs"]:
        if r["tool"] != "headrace":
            continue
        lg = r.get("log")
        stop = r.get("stop", {})
        how = "graceful" if stop.get("graceful") else "NOT graceful"
        if lg is None and not results["prediction_logging"]:
            continue
        if lg is None or "error" in lg:
            err = "no count" if lg is None else lg["error"].splitlines()[0][:80]
            lines.append(f"prediction log, {r['workers']} worker(s): {err} FAIL")
            continue
        lines.append(
            f"prediction log, {r['workers']} worker(s): {lg['rows']:,} rows = "
            f"{lg['answered_200']:,} requests answered 200 + {lg['in_flight_logged']} sent "
            f"and in flight when the load generator stopped (at most {lg['in_flight_max']}); "
            f"{lg['missing']} lost, {lg['duplicated']} logged twice "
            f"{_mark(lg['exact'])} (SIGTERM: {how}, {stop.get('stop_s', 0):.1f} s)"
        )
    for r in results["runs"]:
        low = r.get("phases", {}).get(f"c{min(results['concurrency'])}")
        if low and low["p50_ms"] >= 35 and (low["cpu_ms_per_request"] or 99) < 10:
            lines.append(
                f"note: {r['label']} takes {low['p50_ms']:.0f} ms (median) at concurrency "
                f"{low['connections']} for {low['cpu_ms_per_request']:.1f} ms of CPU a "
                "request: the ~40 ms delayed-ACK stall of a response written in two segments "
                "on a socket without TCP_NODELAY (uvicorn's multi-worker listening socket), "
                "not compute"
            )
    v = results["verdict"]
    lines.append("")
    parts = []
    for n, e in v["by_workers"].items():
        if "x_mlflow" in e:
            parts.append(
                f"{n} worker(s) {e['rps']:,.0f} vs {e['mlflow_rps']:,.0f} req/s = "
                f"{e['x_mlflow']:g}x {_mark(e['x_ok'])}"
            )
    lines.append(
        f"target headrace >= {TARGET_X:g}x MLflow's throughput at concurrency {top}: "
        + ("; ".join(parts) if parts else "not measured (no MLflow in this run) n/a")
    )
    parts = [
        f"{n} worker(s) {e['p99_c1_ms']:.2f} ms {_mark(e['p99_ok'])}"
        for n, e in v["by_workers"].items()
        if "p99_c1_ms" in e
    ]
    lines.append(
        f"target p99 < {1000 * TARGET_P99_S:g} ms at concurrency {min(results['concurrency'])}, "
        "prediction logging on: "
        + ("; ".join(parts) or "not measured FAIL")
        + ("" if results["prediction_logging"] else " (logging was off: n/a)")
    )
    lines.append(f"every answered request logged exactly once: {_mark(v['log_ok'])}")
    lines.append(f"no errors (headrace): {_mark(v['errors_ok'])}")
    agree = [e.get("predictions_agree") for e in v["by_workers"].values() if "x_mlflow" in e]
    if agree:
        lines.append(
            "both servers predict the same class for the request: "
            + ("yes" if all(agree) else "NO - see the JSON")
        )
    return "\n".join(lines)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-peers", action="store_true", help="headrace only")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)))
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    parser.add_argument("--duration", type=int, default=DURATION_S, help="seconds per phase")
    parser.add_argument("--warmup", type=int, default=WARMUP_S, help="seconds of warm-up")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--headrace-args",
        default="",
        help="more options for headrace serve, e.g. '--batch-max-size 16' (labelled)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    peers = None if args.no_peers else [p for p in args.peers.split(",") if p]
    results = run(
        headrace_args=tuple(shlex.split(args.headrace_args)),
        peers=peers,
        workers=_ints(args.workers),
        concurrency=_ints(args.concurrency),
        duration=args.duration,
        warmup=args.warmup,
        loadgen=args.loadgen,
    )
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
