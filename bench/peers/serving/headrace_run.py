"""headrace's side of the serving bench (project venv).

- ``setup --dir D --body FILE``: a new workspace in D (``init_workspace``), the model
  fitted on the pandas frame (feature names kept) and registered with
  ``hr.log_model(model, "cancer", frame=X, workspace=ws)`` (the frame gives the
  signature), alias ``champion`` set to version 1; the request body written to FILE.
  The bench then runs ``headrace serve cancer@champion`` with cwd=D.
- ``count --dir D --ids-out FILE``: after the server has exited, the prediction log's
  row count (``ws.store.predictions.count("cancer")``) and the request id of every
  logged row, one per line in FILE, for the bench to match against the responses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w


def setup(folder: Path, body: Path) -> None:
    started = time.perf_counter()
    import headrace as hr
    from headrace.registry.service import set_alias
    from headrace.workspace.settings import init_workspace

    init_workspace(folder)
    ws = hr.open_workspace(folder)
    try:
        X, y = w.training_data()
        model = w.fit(X, y)
        record = hr.log_model(model, w.MODEL, frame=X, workspace=ws)
        set_alias(ws, w.MODEL, w.ALIAS, record.version)
    finally:
        ws.close()
    body.write_text(w.request_body(X))
    w.emit(
        {
            "tool": "headrace",
            "version": w.library_version("headrace"),
            "sklearn": w.library_version("scikit-learn"),
            "model_version": record.version,
            "flavor": record.flavor,
            "signature_columns": len((record.signature or {}).get("inputs", [])),
            "train_accuracy": round(float(model.score(X, y)), 6),
            "setup_s": round(time.perf_counter() - started, 3),
        }
    )


def count(folder: Path, ids_out: Path) -> None:
    import headrace as hr

    ws = hr.open_workspace(folder)
    try:
        rows = ws.store.predictions.count(w.MODEL)
        records = ws.store.predictions.list(w.MODEL, limit=max(rows, 1) * 2)
    finally:
        ws.close()
    ids_out.write_text("".join(f"{r.request_id}\n" for r in records))
    w.emit(
        {
            "rows": rows,
            "listed": len(records),
            "versions": sorted({r.version for r in records}),
            "roles": sorted({r.role for r in records}),
            "multi_row": sum(1 for r in records if r.row != 0),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--dir", type=Path, required=True)
    s.add_argument("--body", type=Path, required=True)
    c = sub.add_parser("count")
    c.add_argument("--dir", type=Path, required=True)
    c.add_argument("--ids-out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.dir, args.body)
    else:
        count(args.dir, args.ids_out)


if __name__ == "__main__":
    main()
