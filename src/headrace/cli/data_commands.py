"""CLI commands for data versions: branches, merge, log, versions, diff, lineage, impact,
gc and import. Thin: each delegates to ``headrace.data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

branch_app = typer.Typer(help="Create, list and delete branches of the data.", no_args_is_help=True)


def _console() -> Any:
    from headrace.cli.app import console

    return console


def _workspace(remote: bool = False) -> Any:
    from headrace.cli.app import _workspace as open_it

    return open_it(remote)


def _remote() -> Any:
    from headrace.cli.app import _remote as remote

    return remote()


def _when(ts: float | None) -> str:
    from headrace.cli.render import when

    return when(ts)


def _short(version_id: str | None) -> str:
    return (version_id or "-")[:16]


@branch_app.command("create")
def branch_create(
    name: Annotated[str, typer.Argument(help="The new branch.")],
    from_branch: Annotated[str, typer.Option("--from", help="Branch to start from.")] = "main",
) -> None:
    """Create NAME pointing at the same versions as --from (no data is copied)."""
    from headrace.data.branching import create_branch

    remote = _remote()
    if remote is not None:
        from headrace.store.branches import BranchRecord

        made = remote.call("POST", "/branches", json={"name": name, "from_branch": from_branch})
        record = BranchRecord(**made)
    else:
        record = create_branch(_workspace(), name, from_branch=from_branch)
    _console().print(
        f"created branch [bold]{escape(record.name)}[/] from {escape(from_branch)} "
        f"({record.heads} asset version{'s' * (record.heads != 1)}, no data copied)"
    )


@branch_app.command("list")
def branch_list() -> None:
    """List branches with how many asset versions each points at."""
    ws = _workspace(remote=True)
    table = Table(box=None, header_style="bold")
    for column in ("branch", "from", "versions", "created", "by"):
        table.add_column(column)
    for record in ws.store.branches.list():
        table.add_row(
            escape(record.name),
            escape(record.from_branch or "-"),
            str(record.heads),
            _when(record.created_at),
            escape(record.created_by or "-"),
        )
    _console().print(table)


@branch_app.command("delete")
def branch_delete(name: Annotated[str, typer.Argument(help="The branch to delete.")]) -> None:
    """Delete a branch (its versions stay until gc finds nothing else needs them)."""
    from headrace.data.branching import delete_branch

    remote = _remote()
    if remote is not None:
        remote.call("DELETE", f"/branches/{name}")
    else:
        delete_branch(_workspace(), name)
    _console().print(f"deleted branch {escape(name)}")


def merge(
    source: Annotated[str, typer.Argument(help="The branch whose changes move.")],
    into: Annotated[str, typer.Option(help="The branch that receives them.")] = "main",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would move.")] = False,
) -> None:
    """Move the versions that changed on SOURCE onto --into, atomically.

    Refused when an asset changed on both branches since SOURCE was created (or last
    merged), or when a version to move failed an error-severity check.
    """
    from headrace.data.branching import merge as do_merge

    remote = _remote()
    if remote is not None:
        from types import SimpleNamespace

        answer = remote.call(
            "POST", f"/branches/{source}/merge", json={"into": into, "dry_run": dry_run}
        )
        result: Any = SimpleNamespace(moves=[SimpleNamespace(**m) for m in answer["moves"]])
    else:
        result = do_merge(_workspace(), source, into, dry_run=dry_run)
    console = _console()
    verb = "would move" if dry_run else "moved"
    if not result.moves:
        console.print(
            f"nothing to merge: {escape(into)} already has every change of {escape(source)}"
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("asset", "partition", "from", "to"):
        table.add_column(column)
    for move in result.moves:
        table.add_row(
            escape(move.asset),
            escape(move.partition or "-"),
            _short(move.old_version_id),
            _short(move.new_version_id),
        )
    console.print(table)
    console.print(
        f"{verb} {len(result.moves)} version{'s' * (len(result.moves) != 1)} from "
        f"{escape(source)} into {escape(into)}"
    )


def log(
    branch: Annotated[str | None, typer.Option(help="Only this branch.")] = None,
    asset: Annotated[str | None, typer.Option(help="Only this asset.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many entries.")] = 30,
) -> None:
    """The history of what moved on the branches: when, by whom, from which run."""
    ws = _workspace(remote=True)
    events = ws.store.branches.log(branch=branch, asset=asset, limit=limit)
    if not events:
        _console().print("no history yet")
        return
    table = Table(box=None, header_style="bold")
    for column in ("when", "branch", "what", "asset", "from", "to", "run", "by"):
        table.add_column(column)
    for event in events:
        name = event.asset + (f"[{event.partition}]" if event.partition else "")
        table.add_row(
            _when(event.created_at),
            escape(event.branch),
            escape(
                event.kind
                if not event.message or event.kind == "materialize"
                else f"{event.kind}: {event.message}"
            ),
            escape(name or "-"),
            _short(event.old_version_id),
            _short(event.new_version_id),
            _short(event.run_id),
            escape(event.actor or "-"),
        )
    _console().print(table)


def versions(
    asset: Annotated[str, typer.Argument(help="The asset.")],
    partition: Annotated[str | None, typer.Option(help="Only this partition.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many versions.")] = 20,
) -> None:
    """List an asset's versions, newest first, and which branches point at them."""
    ws = _workspace(remote=True)
    records = ws.store.versions.list(asset, partition=partition, limit=limit)
    if not records:
        _console().print(f"asset {escape(asset)} has no versions yet")
        return
    pointed: dict[str, list[str]] = {}
    for branch in ws.store.branches.list():
        for version in ws.store.versions.heads(branch.name, [asset]).values():
            pointed.setdefault(version.id, []).append(branch.name)
    table = Table(box=None, header_style="bold")
    for column in ("version", "partition", "created", "rows", "size", "code", "run", "branches"):
        table.add_column(column)
    for record in records:
        table.add_row(
            record.id,
            escape(record.partition or "-"),
            _when(record.created_at),
            "-" if record.row_count is None else f"{record.row_count:,}",
            f"{record.size / 1e6:.2f} MB" if record.size >= 1e5 else f"{record.size:,} B",
            (record.code_version or "-")[:10],
            _short(record.run_id) if record.run_id else "-",
            escape(", ".join(pointed.get(record.id, [])) or "-"),
        )
    _console().print(table)


def _side(ws: Any, asset: str, ref: str) -> tuple[list[Any], str]:
    """A diff side: a branch name (all the asset's partitions on it) or a version id."""
    if ws.store.branches.exists(ref):
        heads = ws.store.versions.heads(ref, [asset])
        records = sorted(heads.values(), key=lambda r: r.partition or "")
        if not records:
            from headrace.store.errors import VersionNotFoundError

            raise VersionNotFoundError(
                f"asset {asset!r} has no version on branch {ref!r}", asset=asset
            )
        return records, f"branch {ref}"
    record = ws.store.versions.get(ref)
    if record.asset != asset:
        from headrace.store.errors import VersionNotFoundError

        raise VersionNotFoundError(
            f"version {ref} belongs to asset {record.asset!r}, not {asset!r}", asset=asset
        )
    return [record], f"version {record.id[:16]}"


def diff(
    asset: Annotated[str, typer.Argument(help="The asset.")],
    old: Annotated[str, typer.Argument(help="A version id (or prefix) or a branch name.")],
    new: Annotated[str, typer.Argument(help="A version id (or prefix) or a branch name.")],
    key: Annotated[
        str | None, typer.Option(help="Primary key column(s), comma-separated (default: declared).")
    ] = None,
    sample: Annotated[int, typer.Option(min=0, help="Rows shown per kind of change.")] = 5,
) -> None:
    """Compare two versions of a table: schema, row counts, and (with a primary key)
    the rows added, removed and changed."""
    from headrace.data.diff import TableDiff, diff_tables, render
    from headrace.data.errors import DataError

    remote = _remote()
    if remote is not None:
        try:
            got = remote.call(
                "GET",
                f"/assets/{asset}/diff",
                params={"old": old, "new": new, "key": key, "sample": sample},
            )
        finally:
            remote.close()
        _console().print(f"[bold]{escape(asset)}[/]: {escape(old)} → {escape(new)}")
        render(TableDiff.from_dict(got["diff"]), _console())
        return
    ws = _workspace()
    old_records, old_label = _side(ws, asset, old)
    new_records, new_label = _side(ws, asset, new)
    for record in (*old_records, *new_records):
        if record.format != "parquet":
            raise DataError(
                f"asset {asset!r} is not a table; only tables can be diffed", asset=asset
            )
    primary_key = (
        tuple(k.strip() for k in key.split(",") if k.strip())
        if key
        else (new_records[-1].primary_key or old_records[-1].primary_key)
    )
    from headrace.objects.opening import local_files

    console = _console()
    console.print(f"[bold]{escape(asset)}[/]: {escape(old_label)} → {escape(new_label)}")
    # An encrypted (or remote) store's blobs are decrypted into a private temporary folder.
    with local_files(ws.blobs, [r.blob for r in (*old_records, *new_records)]) as paths:
        result = diff_tables(
            paths[: len(old_records)],
            paths[len(old_records) :],
            primary_key=primary_key or None,
            sample=sample,
            name=asset,
        )
    render(result, console)


def lineage(
    asset: Annotated[str, typer.Argument(help="The asset.")],
    version: Annotated[str | None, typer.Option(help="A version id (default: the head).")] = None,
    branch: Annotated[str, typer.Option(help="Branch whose head to start from.")] = "main",
    partition: Annotated[str | None, typer.Option(help="Partition whose head to use.")] = None,
    downstream: Annotated[
        bool, typer.Option("--downstream/--upstream", help="What it made, or what made it.")
    ] = False,
    depth: Annotated[int, typer.Option(min=1, help="How many levels.")] = 20,
) -> None:
    """Print the version lineage of an asset as a tree."""
    from rich.tree import Tree

    from headrace.data.lineage import LineageNode, lineage_tree

    ws = _workspace(remote=True)
    if version is not None:
        root = ws.store.versions.get(version)
    else:
        heads = ws.store.versions.heads(branch, [asset])
        candidates = [v for (a, p), v in heads.items() if partition is None or p == partition]
        if not candidates:
            from headrace.store.errors import VersionNotFoundError

            raise VersionNotFoundError(
                f"asset {asset!r} has no version on branch {branch!r}", asset=asset
            )
        root = max(candidates, key=lambda v: v.created_at)
    if hasattr(ws, "remote"):
        node = ws.remote.lineage(root.id, upstream=not downstream, depth=depth)
    else:
        node = lineage_tree(ws, root, upstream=not downstream, depth=depth)

    def label(item: LineageNode) -> str:
        v = item.version
        name = v.asset + (f"[{v.partition}]" if v.partition else "")
        extra = f" as {item.parameter}" if item.parameter and not downstream else ""
        rows = "" if v.row_count is None else f" · {v.row_count:,} rows"
        seen = " (shown above)" if item.repeated else ""
        return (
            f"[bold]{escape(name)}[/] [dim]{v.id[:16]} · {_when(v.created_at)}{rows}"
            f"{escape(extra)}{seen}[/]"
        )

    def grow(tree: Tree, item: LineageNode) -> None:
        for child in item.children:
            grow(tree.add(label(child)), child)

    tree = Tree(label(node))
    grow(tree, node)
    _console().print(tree)
    if not node.children:
        _console().print(f"[dim]no {'downstream' if downstream else 'upstream'} versions[/]")


def impact(
    branch: Annotated[
        str | None, typer.Option(help="Compare this branch with main (default: working tree).")
    ] = None,
) -> None:
    """List the assets a change touches: changed ones and everything downstream."""
    from headrace.data.impact import impact as compute

    report = compute(_workspace(), branch=branch)
    console = _console()
    if not report.changed:
        console.print(f"no changes in the {escape(report.compared)} against main")
        return
    table = Table(box=None, header_style="bold")
    for column in ("asset", "impact", "why"):
        table.add_column(column)
    for name in sorted(report.changed):
        table.add_row(escape(name), "[yellow]changed[/]", escape(report.changed[name]))
    for name in sorted(report.downstream):
        roots = ", ".join(report.downstream[name])
        table.add_row(escape(name), "downstream", escape(f"reads from {roots}"))
    console.print(f"[bold]{escape(report.compared)}[/] against main:")
    console.print(table)
    console.print(f"{len(report.assets)} asset{'s' * (len(report.assets) != 1)} affected")


def gc(
    keep_last: Annotated[int, typer.Option(min=1, help="Versions kept per branch head.")] = 5,
    keep_days: Annotated[
        float | None, typer.Option(help="Also keep versions younger than this many days.")
    ] = None,
    grace: Annotated[
        float, typer.Option(help="Never touch blobs written in the last SECONDS.")
    ] = 3600.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
) -> None:
    """Delete stored data that no retained version needs."""
    from headrace.data.gc import collect

    report = collect(
        _workspace(),
        keep_last=keep_last,
        keep_days=keep_days,
        grace_seconds=grace,
        dry_run=dry_run,
    )
    verb = "would free" if dry_run else "freed"
    _console().print(
        f"{report.retained_versions} versions retained; {len(report.deleted_blobs)} blob"
        f"{'s' * (len(report.deleted_blobs) != 1)} {'to delete' if dry_run else 'deleted'}, "
        f"{verb} {report.freed_bytes / 1e6:.1f} MB; {report.kept_blobs} kept"
    )


def import_(
    asset: Annotated[str, typer.Argument(help="The asset the file becomes a version of.")],
    path: Annotated[Path, typer.Argument(help="A Parquet file.")],
    partition: Annotated[str | None, typer.Option(help="The partition it is.")] = None,
    branch: Annotated[str, typer.Option(help="Branch to put it on.")] = "main",
    key: Annotated[str | None, typer.Option(help="Primary key column(s), comma-separated.")] = None,
) -> None:
    """Record an existing Parquet file as a version (copied once, content-addressed)."""
    from headrace.data.versions import import_table

    primary_key = tuple(k.strip() for k in key.split(",") if k.strip()) if key else ()
    result = import_table(
        _workspace(), asset, path, partition=partition, branch=branch, primary_key=primary_key
    )
    version = result.version
    rows = "-" if version.row_count is None else f"{version.row_count:,}"
    if result.created:
        _console().print(
            f"imported {escape(str(path))} as {escape(asset)} version {version.id[:16]} "
            f"({rows} rows, {version.size / 1e6:.1f} MB) on {escape(branch)} in "
            f"{result.seconds:.2f} s"
        )
    else:
        _console().print(
            f"unchanged: {escape(branch)} already has these bytes as {escape(asset)} version "
            f"{version.id[:16]} (nothing stored; {result.seconds:.2f} s)"
        )


def show(
    asset: Annotated[str, typer.Argument(help="The asset.")],
    branch: Annotated[str, typer.Option(help="Branch to read.")] = "main",
    version: Annotated[str | None, typer.Option(help="A version id (or prefix).")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The version the branch had then (ISO time).")
    ] = None,
    partition: Annotated[str | None, typer.Option(help="Only this partition.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows shown.")] = 5,
) -> None:
    """Print an asset's value: the first rows of a table, or the stored object."""
    import json
    from functools import partial

    from headrace.data.versions import read

    remote = _remote()
    value = (remote.read if remote is not None else partial(read, _workspace()))(
        asset,
        partition=partition,
        branch=branch,
        version=version,
        as_of=as_of,
        as_="arrow",
    )
    console = _console()
    if type(value).__module__.startswith("pyarrow"):
        rows = value.slice(0, limit).to_pylist()
        table = Table(box=None, header_style="bold")
        if value.num_columns > 6:  # wide: a line per column, a column per row
            table.add_column("column")
            table.add_column("type", style="dim")
            for i in range(len(rows)):
                table.add_column(f"row {i + 1}", overflow="fold")
            for field in value.schema:
                table.add_row(
                    escape(field.name),
                    escape(str(field.type)),
                    *(escape(str(r[field.name])) for r in rows),
                )
        else:
            for field in value.schema:
                table.add_column(f"{field.name}\n[dim]{field.type}[/]", overflow="fold")
            for row in rows:
                table.add_row(*(escape(str(v)) for v in row.values()))
        console.print(table)
        console.print(f"[dim]{min(limit, value.num_rows)} of {value.num_rows:,} rows[/]")
    else:
        console.print(escape(json.dumps(value, indent=2, default=str)[:20_000]))


def register(app: typer.Typer) -> None:
    app.command()(show)
    app.add_typer(branch_app, name="branch")
    app.command()(merge)
    app.command()(log)
    app.command()(versions)
    app.command()(diff)
    app.command()(lineage)
    app.command()(impact)
    app.command()(gc)
    app.command("import")(import_)
