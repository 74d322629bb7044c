"""Model flavors: how a fitted model is stored and loaded, safely.

- ``sklearn``: scikit-learn estimators and pipelines, in the skops format, which loads
  without running pickled code and refuses types outside its trusted list unless the
  caller trusts them by name;
- ``lightgbm`` and ``xgboost``: their native model formats (text / UBJSON), wrapped with
  what prediction needs (the classes, the kind of model);
- ``python``: any object with ``predict``, pickled; loading it needs an explicit
  ``allow_pickle=True``, since unpickling runs code.

Each flavor's stored form is ``HRMODEL1`` + a JSON header line + the payload.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from headrace.errors import HeadraceError

MAGIC = b"HRMODEL1\n"
#: Types skops does not trust by default that hold no code: scikit-learn's own fitted
#: estimators keep them (SimpleImputer keeps the dtype it was fitted on).
ALSO_TRUSTED = frozenset({"numpy.dtype"})


class ModelFormatError(HeadraceError):
    """A model that cannot be stored or loaded as asked (names the model and why)."""


class UnsafeModelError(ModelFormatError):
    """Loading would run code or build types nobody declared trusted."""


def _class_name(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def _pack(header: dict[str, Any], payload: bytes) -> bytes:
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    if not data.startswith(MAGIC):
        raise ModelFormatError("not a headrace model (the header is missing)")
    header, _, payload = data[len(MAGIC) :].partition(b"\n")
    return json.loads(header), payload


def _module_of(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


class Booster:
    """Prediction over a LightGBM or XGBoost booster, like the scikit-learn wrapper
    it came from (``predict`` gives classes for a classifier, ``predict_proba``
    the probabilities)."""

    def __init__(self, library: str, booster: Any, kind: str, classes: list[Any] | None) -> None:
        self.library = library
        self.booster = booster
        self.kind = kind
        self.classes = classes

    def _raw(self, data: Any) -> Any:
        import numpy as np

        if self.library == "xgboost":
            import xgboost

            names = self.booster.feature_names
            return np.asarray(self.booster.predict(xgboost.DMatrix(data, feature_names=names)))
        return np.asarray(self.booster.predict(data))

    def predict_proba(self, data: Any) -> Any:
        import numpy as np

        if self.kind != "classifier":
            raise ModelFormatError("predict_proba() is for classifiers; this is a regressor")
        raw = self._raw(data)
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, data: Any) -> Any:
        import numpy as np

        if self.kind != "classifier":
            return self._raw(data)
        index = self.predict_proba(data).argmax(axis=1)
        return np.asarray(self.classes)[index] if self.classes is not None else index


@dataclass(frozen=True)
class Flavor:
    name: str

    def handles(self, model: Any) -> bool:
        raise NotImplementedError

    def save(self, model: Any) -> bytes:
        raise NotImplementedError

    def load(
        self, header: dict[str, Any], payload: bytes, *, allow_pickle: bool, trusted: Sequence[str]
    ) -> Any:
        raise NotImplementedError


class SklearnFlavor(Flavor):
    def handles(self, model: Any) -> bool:
        if _module_of(model) == "sklearn":
            return True
        base = sys.modules.get("sklearn.base")  # loaded if the model is an estimator
        return base is not None and isinstance(model, base.BaseEstimator)

    def save(self, model: Any) -> bytes:
        import skops.io

        return _pack({"flavor": self.name, "class": _class_name(model)}, skops.io.dumps(model))

    def load(
        self, header: dict[str, Any], payload: bytes, *, allow_pickle: bool, trusted: Sequence[str]
    ) -> Any:
        import skops.io

        untrusted = skops.io.get_untrusted_types(data=payload)
        refused = sorted(set(untrusted) - set(trusted) - ALSO_TRUSTED)
        if refused:
            raise UnsafeModelError(
                f"the {header.get('class')} model holds types skops does not trust by "
                f"default: {', '.join(refused)}; if you trust where it came from, load it "
                "with trusted=[...] naming them"
            )
        return skops.io.loads(payload, trusted=list(untrusted) or None)


def _booster_header(flavor: str, model: Any, classifier: type) -> dict[str, Any]:
    """What prediction over a bare booster needs: the kind of model and its classes."""
    classes = getattr(model, "classes_", None)
    return {
        "flavor": flavor,
        "class": _class_name(model),
        "kind": "classifier" if isinstance(model, classifier) else "regressor",
        "classes": None if classes is None else [_plain(c) for c in classes],
    }


class LightGBMFlavor(Flavor):
    def handles(self, model: Any) -> bool:
        return _module_of(model) == "lightgbm"

    def save(self, model: Any) -> bytes:
        import lightgbm

        booster = model if isinstance(model, lightgbm.Booster) else model.booster_
        header = _booster_header(self.name, model, lightgbm.LGBMClassifier)
        return _pack(header, booster.model_to_string().encode())

    def load(
        self, header: dict[str, Any], payload: bytes, *, allow_pickle: bool, trusted: Sequence[str]
    ) -> Any:
        import lightgbm

        booster = lightgbm.Booster(model_str=payload.decode())
        return Booster("lightgbm", booster, header["kind"], header.get("classes"))


class XGBoostFlavor(Flavor):
    def handles(self, model: Any) -> bool:
        return _module_of(model) == "xgboost"

    def save(self, model: Any) -> bytes:
        import xgboost

        booster = model if isinstance(model, xgboost.Booster) else model.get_booster()
        header = _booster_header(self.name, model, xgboost.XGBClassifier)
        return _pack(header, bytes(booster.save_raw(raw_format="ubj")))

    def load(
        self, header: dict[str, Any], payload: bytes, *, allow_pickle: bool, trusted: Sequence[str]
    ) -> Any:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(payload))
        return Booster("xgboost", booster, header["kind"], header.get("classes"))


class PythonFlavor(Flavor):
    def handles(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any) -> bytes:
        try:
            payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ModelFormatError(
                f"the {_class_name(model)} model cannot be pickled: {exc}"
            ) from exc
        return _pack({"flavor": self.name, "class": _class_name(model)}, payload)

    def load(
        self, header: dict[str, Any], payload: bytes, *, allow_pickle: bool, trusted: Sequence[str]
    ) -> Any:
        if not allow_pickle:
            raise UnsafeModelError(
                f"the {header.get('class')} model is pickled Python, and loading it runs "
                "code; load it with allow_pickle=True only if you trust where it came from"
            )
        return pickle.loads(payload)


class MlflowFlavor(Flavor):
    """A model logged by the MLflow client: its whole MLflow model directory, zipped.

    Never chosen for a Python object (the server registers it from the files the client
    uploaded); loading needs ``mlflow`` installed and ``allow_pickle=True``, since
    MLflow's flavors pickle their models.
    """

    def handles(self, model: Any) -> bool:
        return False

    def save(self, model: Any) -> bytes:
        raise ModelFormatError("MLflow models are registered through the MLflow API")

    def load(
        self, header: dict[str, Any], payload: bytes, *, allow_pickle: bool, trusted: Sequence[str]
    ) -> Any:
        import atexit
        import io
        import shutil
        import tempfile
        import zipfile

        if not allow_pickle:
            raise UnsafeModelError(
                f"the MLflow model ({header.get('class')}) was pickled by MLflow, and "
                "loading it runs code; load it with allow_pickle=True only if you trust "
                "where it came from"
            )
        try:
            import mlflow.pyfunc
        except ImportError as exc:
            raise ModelFormatError(
                "this model was logged by the MLflow client; loading it needs the mlflow "
                "package (pip install mlflow-skinny)"
            ) from exc
        folder = tempfile.mkdtemp(prefix="hr-mlflow-model-")
        atexit.register(shutil.rmtree, folder, True)
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            for member in archive.infolist():
                if member.filename.startswith("/") or ".." in member.filename.split("/"):
                    raise ModelFormatError(f"model file {member.filename!r} leaves its folder")
            archive.extractall(folder)
        if "sklearn" in header.get("flavors", []):
            import mlflow.sklearn

            return mlflow.sklearn.load_model(folder)
        return mlflow.pyfunc.load_model(folder)


def pack_mlflow_model(files: dict[str, bytes]) -> tuple[str, bytes]:
    """(class name, stored bytes) of an MLflow model directory given as path → bytes."""
    import io
    import zipfile

    import yaml

    try:
        spec = yaml.safe_load(files["MLmodel"]) or {}
    except (KeyError, yaml.YAMLError) as exc:
        raise ModelFormatError(
            f"not an MLflow model: its MLmodel file is unreadable ({exc})"
        ) from exc
    flavors = sorted((spec.get("flavors") or {}).keys()) if isinstance(spec, dict) else []
    native = [f for f in flavors if f != "python_function"]
    model_class = f"mlflow.{native[0]}" if native else "mlflow.pyfunc"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            archive.writestr(path, files[path])
    header = {"flavor": "mlflow", "class": model_class, "flavors": flavors}
    return model_class, _pack(header, buffer.getvalue())


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


FLAVORS: dict[str, Flavor] = {
    f.name: f
    # most specific first: LightGBM and XGBoost models are scikit-learn estimators too
    for f in (
        LightGBMFlavor("lightgbm"),
        XGBoostFlavor("xgboost"),
        SklearnFlavor("sklearn"),
        PythonFlavor("python"),
        MlflowFlavor("mlflow"),
    )
}


def flavor_of(model: Any, declared: str | None = None) -> Flavor:
    """The flavor that stores ``model`` (``declared`` forces one)."""
    if declared is not None:
        found = FLAVORS.get(declared)
        if found is None:
            raise ModelFormatError(
                f"unknown model flavor {declared!r}; known: {', '.join(FLAVORS)}"
            )
        if not found.handles(model):
            raise ModelFormatError(f"a {_class_name(model)} is not a {declared} model")
        return found
    for flavor in FLAVORS.values():
        if flavor.handles(model):
            return flavor
    raise ModelFormatError(
        f"cannot store a {_class_name(model)} as a model: it is not a scikit-learn, "
        "LightGBM or XGBoost model and has no predict() method"
    )


def dump_model(model: Any, flavor: str | None = None) -> tuple[str, str, bytes]:
    """(flavor, class name, stored bytes) of a fitted model."""
    chosen = flavor_of(model, flavor)
    return chosen.name, _class_name(model), chosen.save(model)


def load_model_bytes(
    data: bytes, *, allow_pickle: bool = False, trusted: Sequence[str] = ()
) -> Any:
    header, payload = unpack(data)
    flavor = FLAVORS.get(str(header.get("flavor")))
    if flavor is None:
        raise ModelFormatError(f"unknown model flavor {header.get('flavor')!r} in stored model")
    return flavor.load(header, payload, allow_pickle=allow_pickle, trusted=trusted)
