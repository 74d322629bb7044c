"""``headrace admin``, ``principals``, ``tokens`` and ``audit``: who may do what, and the
tamper-evident record of what was done. Run against the local store, these commands act
as the operating-system user (whoever can open the store can already change it); the
team server checks each caller's token and role."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

admin_app = typer.Typer(help="Create the first admin.", no_args_is_help=True)
principals_app = typer.Typer(
    help="People and service accounts, and their roles.", no_args_is_help=True
)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


def _console() -> Any:
    from headrace.cli.app import console

    return console


def _governance(remote: bool = False) -> Any:
    from headrace.cli.app import _workspace

    return _workspace(remote).store.governance


def _actor() -> str:
    from headrace.runtime.identity import actor

    return actor()


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def _days(value: float | None) -> float | None:
    return None if value is None else value * 86400


def _print_token(name: str, token: str) -> None:
    console = _console()
    console.print(f"token for {escape(name)} (shown once; keep it secret):")
    console.print(token, markup=False, highlight=False, soft_wrap=True)


@admin_app.command("create")
def admin_create(
    name: Annotated[str, typer.Argument(help="The first admin's name.")],
    expires_days: Annotated[
        float | None, typer.Option(min=0.001, help="The token expires after this many days.")
    ] = None,
) -> None:
    """Create the first admin and its token (refused once an admin exists)."""
    governance = _governance()
    governance.create_first_admin(name)
    _print_token(name, governance.issue_token(name, expires_in=_days(expires_days), actor=name))


@principals_app.command("create")
def principals_create(
    name: Annotated[str, typer.Argument(help="A person or a service account.")],
    role: Annotated[str, typer.Option(help="viewer, developer, maintainer or admin.")] = "viewer",
    namespace: Annotated[str, typer.Option(help="Where the role applies (* everywhere).")] = "*",
    service: Annotated[bool, typer.Option(help="A service account, not a person.")] = False,
    token: Annotated[bool, typer.Option(help="Issue a token now.")] = True,
) -> None:
    """Create a principal with a role (and a token)."""
    governance = _governance(remote=True)
    kind = "service" if service else "person"
    governance.create_principal(name, kind=kind, role=role, namespace=namespace, actor=_actor())
    _console().print(f"created {kind} {escape(name)} as {role} in {escape(namespace)}")
    if token:
        _print_token(name, governance.issue_token(name, actor=_actor()))


@principals_app.command("list")
def principals_list() -> None:
    """Every principal and its roles."""
    table = Table(box=None, header_style="bold")
    for column in ("name", "kind", "roles", "created", "by", "state"):
        table.add_column(column)
    for p in _governance(remote=True).principals():
        roles = ", ".join(f"{r} in {ns}" for ns, r in sorted(p.grants.items())) or "-"
        state = "[red]disabled[/]" if p.disabled else "active"
        table.add_row(
            escape(p.name),
            p.kind,
            escape(roles),
            _when(p.created_at),
            escape(p.created_by or "-"),
            state,
        )
    _console().print(table)


@principals_app.command("grant")
def principals_grant(
    name: Annotated[str, typer.Argument(help="A principal.")],
    role: Annotated[str, typer.Argument(help="viewer, developer, maintainer or admin.")],
    namespace: Annotated[str, typer.Option(help="Where the role applies (* everywhere).")] = "*",
) -> None:
    """Give a principal a role in a namespace (replacing its role there)."""
    _governance(remote=True).grant(name, role, namespace=namespace, actor=_actor())
    _console().print(f"{escape(name)} is {role} in {escape(namespace)}")


@principals_app.command("revoke")
def principals_revoke(
    name: Annotated[str, typer.Argument(help="A principal.")],
    namespace: Annotated[str, typer.Option(help="The namespace whose role goes.")] = "*",
) -> None:
    """Take a principal's role in a namespace away."""
    _governance(remote=True).revoke_grant(name, namespace=namespace, actor=_actor())
    _console().print(f"{escape(name)} has no role in {escape(namespace)} now")


@principals_app.command("disable")
def principals_disable(
    name: Annotated[str, typer.Argument(help="A principal.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable it again.")] = False,
) -> None:
    """Disable a principal: its tokens stop working."""
    _governance(remote=True).set_disabled(name, not enable, actor=_actor())
    _console().print(f"{escape(name)} {'enabled' if enable else 'disabled'}")


@tokens_app.command("issue")
def tokens_issue(
    name: Annotated[str, typer.Argument(help="A principal.")],
    expires_days: Annotated[
        float | None, typer.Option(min=0.001, help="The token expires after this many days.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
) -> None:
    """Issue a new API token for a principal (shown once)."""
    token = _governance(remote=True).issue_token(
        name, expires_in=_days(expires_days), description=description, actor=_actor()
    )
    _print_token(name, token)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token by its id (the part after hr_)."""
    _governance(remote=True).revoke_token(token_id, actor=_actor())
    _console().print(f"token {escape(token_id)} revoked")


@tokens_app.command("list")
def tokens_list(
    name: Annotated[str | None, typer.Argument(help="A principal (all when none).")] = None,
) -> None:
    """Tokens (ids, never secrets), their expiry and last use."""
    table = Table(box=None, header_style="bold")
    for column in ("id", "principal", "description", "created", "expires", "last used", "state"):
        table.add_column(column)
    now = time.time()
    for t in _governance(remote=True).tokens(name):
        if t.revoked_at is not None:
            state = "[red]revoked[/]"
        elif t.expires_at is not None and t.expires_at <= now:
            state = "[yellow]expired[/]"
        else:
            state = "live"
        table.add_row(
            t.id,
            escape(t.principal),
            escape(t.description or "-"),
            _when(t.created_at),
            _when(t.expires_at),
            _when(t.last_used_at),
            state,
        )
    _console().print(table)


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, help="How many entries.")] = 50,
    after: Annotated[int, typer.Option(min=0, help="Entries after this sequence number.")] = 0,
) -> None:
    """The audit log, oldest first."""
    table = Table(box=None, header_style="bold")
    for column in ("#", "when", "actor", "action", "target", "outcome"):
        table.add_column(column)
    for e in _governance(remote=True).audit(limit=limit, after=after):
        table.add_row(
            str(e.seq),
            _when(e.at),
            escape(e.actor),
            escape(e.action),
            escape(e.target or "-"),
            e.outcome,
        )
    _console().print(table)


def _witnessed(values: list[str]) -> list[Any]:
    """Checkpoints given on the command line: each a checkpoint line, or a file of them
    (one a line)."""
    from pathlib import Path

    from headrace.core.audit_chain import parse_checkpoint

    points: list[Any] = []
    for value in values:
        text = value.strip()
        if not text.startswith("{"):
            path = Path(value)
            if not path.is_file():
                raise typer.BadParameter(
                    f"{value!r} is neither a checkpoint line (JSON) nor a file of them",
                    param_hint="--checkpoint",
                )
            lines = [line for line in path.read_text().splitlines() if line.strip()]
        else:
            lines = [text]
        points.extend(parse_checkpoint(line) for line in lines)
    return points


def _verdict(witnessed: list[str], key_file: Path | None) -> Any:
    from headrace.cli.app import _workspace

    ws = _workspace(remote=True)
    try:
        if hasattr(ws, "remote"):
            if key_file is not None:
                raise typer.BadParameter(
                    "--key-file verifies a local store; the team server verifies with its "
                    "own keys (unset HEADRACE_URL to verify here)",
                    param_hint="--key-file",
                )
            return ws.store.governance.verify_trail([p.line() for p in _witnessed(witnessed)])
        from headrace.runtime.audit import verify_trail
        from headrace.workspace.audit_keys import parse_key_file

        keyring = None
        if key_file is not None:
            keyring = parse_key_file(key_file.read_text(), str(key_file))
        return verify_trail(ws, keyring=keyring, witnessed=_witnessed(witnessed))
    finally:
        ws.close()


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[str] | None,
        typer.Option(
            help="A checkpoint kept outside the store (the line headrace audit checkpoint "
            "printed, or a file of such lines): the log must still hold what it vouches for."
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Verify with the keys in this file (id secret a line)."),
    ] = None,
) -> None:
    """Check the audit log's chain of seals and its checkpoints: an edited, removed or
    rewritten entry shows (exit 1)."""
    verdict = _verdict(checkpoint or [], key_file)
    if verdict.problem is not None:
        _console().print(
            f"[red]audit log broken[/] after {verdict.checked:,} good entries: "
            f"{escape(verdict.problem)}"
        )
        raise typer.Exit(1)
    console = _console()
    console.print(f"audit log intact: {verdict.checked:,} entries, each chained to the one before")
    keyed = verdict.checked - verdict.legacy
    if keyed:
        keys = ", ".join(verdict.keys)
        console.print(
            f"{keyed:,} sealed with audit key{'s' if len(verdict.keys) > 1 else ''} {escape(keys)}"
        )
    if verdict.legacy:
        console.print(
            f"[yellow]{verdict.legacy:,} legacy entries (1 to {verdict.legacy}) are unkeyed: "
            "whoever can write to the store could have rewritten them[/]"
        )
    console.print(
        f"{verdict.checkpoints:,} checkpoint{'s' if verdict.checkpoints != 1 else ''} matched"
        + ("" if verdict.checkpoints else ": run headrace audit checkpoint to anchor the log")
    )


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the log's head (entry count and last seal) with the audit key, keep it in
    the object store, and print it: hand the line to a witness outside the store."""
    from headrace.cli.app import _workspace

    ws = _workspace(remote=True)
    try:
        if hasattr(ws, "remote"):
            line, digest = ws.store.governance.checkpoint()
        else:
            from headrace.runtime.audit import take_checkpoint

            point, digest = take_checkpoint(ws)
            line = point.line()
    finally:
        ws.close()
    from headrace.cli.app import err_console

    # the line alone on stdout, so `headrace audit checkpoint >> witness.txt` keeps it
    err_console.print(f"checkpoint kept in the object store as blob {digest}", soft_wrap=True)
    _console().print(line, markup=False, highlight=False, soft_wrap=True)


@audit_app.command("rotate-key")
def audit_rotate_key() -> None:
    """Add a new audit key to the key file: new entries are sealed with it, the old
    keys stay to verify older ones (the local workspace's key file)."""
    from headrace.cli.app import _workspace
    from headrace.runtime.audit import rotate_key

    ws = _workspace()
    try:
        done = rotate_key(ws)
    finally:
        ws.close()
    was = f" (was {escape(done.old)})" if done.old else ""
    _console().print(
        f"audit key {escape(done.new)}{was} added to {escape(done.file)}; restart the team "
        "server's processes if they read another copy of the file"
    )
    _console().print(
        f"checkpoint of entry {done.checkpoint.seq} signed with the new key and kept in the "
        "object store:"
    )
    _console().print(done.checkpoint.line(), markup=False, highlight=False, soft_wrap=True)


def whoami() -> None:
    """Who the team server (HEADRACE_URL, HEADRACE_TOKEN) takes you for, and your roles."""
    from headrace.cli.app import _remote

    remote = _remote()
    if remote is None:
        from headrace.runtime.identity import actor

        _console().print(f"{escape(actor())} (the local workspace; HEADRACE_URL is not set)")
        return
    try:
        me = remote.call("GET", "/whoami")
    finally:
        remote.close()
    roles = ", ".join(f"{role} in {ns}" for ns, role in sorted(me["roles"].items())) or "none"
    _console().print(f"{escape(me['name'])} ({me['kind']}) at {remote.url}: {escape(roles)}")


def register(app: typer.Typer) -> None:
    app.command()(server)
    app.command()(whoami)
    app.add_typer(admin_app, name="admin")
    app.add_typer(principals_app, name="principals")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(audit_app, name="audit")


def server(
    host: Annotated[str, typer.Option(help="The interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port.")] = 8650,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Server processes (they share the store: use PostgreSQL for more than 1)."
        ),
    ] = 1,
    daemon: Annotated[
        bool,
        typer.Option(
            "--daemon/--no-daemon",
            help="Also run headrace daemon (schedules, sensors, the run queue) beside it.",
        ),
    ] = True,
    daemon_workers: Annotated[
        int,
        typer.Option(min=1, help="Worker processes of that daemon (they execute the runs)."),
    ] = 1,
    tls_cert: Annotated[
        str | None, typer.Option(help="Listen over HTTPS: the PEM certificate chain.")
    ] = None,
    tls_key: Annotated[str | None, typer.Option(help="The PEM private key of --tls-cert.")] = None,
) -> None:
    """Serve the team HTTP API: headrace's /api/v1 (OpenAPI at /api/v1/docs), the MLflow
    REST API and artifact proxy, OpenLineage ingestion, Prometheus /metrics; and, unless
    --no-daemon, the automation daemon in a process of its own, whose workers execute
    the runs the API queues. SIGTERM drains it: requests in flight finish, new ones get
    503, then it exits."""
    import os
    import subprocess
    import sys

    from headrace.cli.app import _workspace
    from headrace.runtime.listening import tls_files

    ws = _workspace()
    root = str(ws.settings.root)
    tls = tls_files(tls_cert, tls_key, ws.settings)
    if workers > 1 and ws.store.dialect == "sqlite":
        _console().print(
            "[yellow]several processes share one SQLite file: writes wait for each other; "
            "a team store is PostgreSQL[/]"
        )
    ws.close()
    os.environ["HEADRACE_SERVER_ROOT"] = root
    scheme = "https" if tls else "http"
    _console().print(
        f"headrace server on {scheme}://{host}:{port}/api/v1 ({workers} process"
        f"{'es' if workers > 1 else ''}); MLflow clients: {scheme}://{host}:{port}"
    )
    beside = None
    if daemon:
        beside = subprocess.Popen(
            [sys.executable, "-m", "headrace", "daemon", "--workers", str(daemon_workers)],
            cwd=root,
            env={**os.environ, "HEADRACE_DAEMON_PARENT": str(os.getpid())},
        )
        _console().print(f"headrace daemon beside it (process {beside.pid})")
    else:
        _console().print(
            "no daemon: runs started through the API wait in the queue for a "
            "`headrace daemon` or `headrace worker` on this metadata store"
        )
    try:
        _serve(host, port, workers, tls)
    finally:
        if beside is not None:
            beside.terminate()
            try:
                beside.wait(timeout=60)
            except subprocess.TimeoutExpired:
                beside.kill()


def _serve(host: str, port: int, workers: int, tls: Any) -> None:
    from headrace.runtime.listening import listen

    listen(
        "headrace.server.app:from_environment",
        host=host,
        port=port,
        workers=workers,
        tls=tls,
        timeout_keep_alive=30,
    )
