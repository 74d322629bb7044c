"""MLflow's side of the serving bench (its own venv), as ``train_log.py`` does it.

``setup --dir D --body FILE``: a SQLite tracking store ``sqlite:///D/mlflow.db`` with
its artifacts under D; one run that fits the same pipeline on the same frame and logs it
with ``mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X,
predictions), input_example=X.iloc[:2])``. The bench then serves ``runs:/<run id>/model``
with ``mlflow models serve --env-manager local`` (``MLFLOW_TRACKING_URI`` set to the
same store). The body FILE is only read, to check the logged model predicts on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w


def setup(folder: Path, body: Path) -> None:
    started = time.perf_counter()
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bc-serving", artifact_location=str(folder / "mlruns"))
    X, y = w.training_data()
    with mlflow.start_run(experiment_id=experiment) as run:
        model = w.fit(X, y)
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("train_acc", model.score(X, y))
        signature = infer_signature(X, model.predict(X))
        mlflow.sklearn.log_model(model, name="model", signature=signature, input_example=X.iloc[:2])
    split = json.loads(body.read_text())["dataframe_split"]
    row = pd.DataFrame(split["data"], columns=split["columns"])
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    w.emit(
        {
            "tool": "mlflow",
            "version": w.library_version("mlflow"),
            "sklearn": w.library_version("scikit-learn"),
            "tracking_uri": uri,
            "run_id": run.info.run_id,
            "model_uri": f"runs:/{run.info.run_id}/model",
            "prediction": [int(v) for v in loaded.predict(row)],
            "train_accuracy": round(float(model.score(X, y)), 6),
            "setup_s": round(time.perf_counter() - started, 3),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--dir", type=Path, required=True)
    s.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    setup(args.dir, args.body)


if __name__ == "__main__":
    main()
