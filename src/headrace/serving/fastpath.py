"""The numeric fast path: a JSON body of numbers read straight into a float64 matrix.

For a model whose signature is all ``Float64`` columns and that takes an array (most
scikit-learn, XGBoost and LightGBM models on numeric features), a body that holds
exactly the signature's columns with plain numbers becomes the model's input in one
numpy call, with no table in between:

- ``dataframe_split`` with the signature's columns in its order;
- ``dataframe_records``, ``instances`` or ``inputs`` as records holding exactly the
  signature's columns, or ``instances``/``inputs`` as rows in the signature's order.

Anything else (another shape, a missing or extra column, a null, a boolean, text, a
number too large for a float, NaN or infinity) is not an error here: :meth:`read`
returns None and the request takes the general path (:mod:`headrace.serving.formats`
and the signature check), which answers the same or names the field at fault. Only the
time differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headrace.registry.service import LoadedModel


class Matrix:
    """A request's rows as a float64 matrix in the signature's column order."""

    __slots__ = ("array", "columns")

    def __init__(self, array: Any, columns: Sequence[str]) -> None:
        self.array = array
        self.columns = columns

    @property
    def height(self) -> int:
        return int(self.array.shape[0])

    def frame(self) -> Any:
        """The rows as a polars frame (for a model or a writer that wants a table)."""
        import polars as pl

        return pl.DataFrame(self.array, schema=list(self.columns), orient="row")


def as_frame(table: Any) -> Any:
    """A polars frame of what a request was read into (a :class:`Matrix` or a frame)."""
    return table.frame() if isinstance(table, Matrix) else table


def stack(tables: Sequence[Any]) -> Any:
    """Several requests' tables as one (matrices stay a matrix when their columns agree)."""
    if len(tables) == 1:
        return tables[0]
    first = tables[0]
    if isinstance(first, Matrix) and all(
        isinstance(t, Matrix) and t.columns == first.columns for t in tables
    ):
        import numpy as np

        return Matrix(np.concatenate([t.array for t in tables]), first.columns)
    import polars as pl

    return pl.concat([as_frame(t) for t in tables], how="vertical_relaxed")


class FastPath:
    """The fast path of one loaded model (see the module's docstring)."""

    def __init__(self, model: LoadedModel, columns: list[str], to_input: Callable[..., Any]):
        self._model = model
        self.columns = columns
        self._to_input = to_input
        self._width = len(columns)
        self._names = set(columns)

    @classmethod
    def of(cls, model: LoadedModel) -> FastPath | None:
        """The model's fast path, or None when its inputs are not all floats or it needs
        a frame."""
        from headrace.io.signature import float_matrix_maker

        signature = model.signature
        if signature is None:
            return None
        maker = float_matrix_maker(model.model, signature)
        return None if maker is None else cls(model, signature.columns, maker)

    def read(self, body: bytes) -> Matrix | None:
        """The body's rows as a matrix, or None when the body is not of the plain shape."""
        import orjson

        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return self.read_value(data)

    def read_value(self, data: Any) -> Matrix | None:
        """:meth:`read` of a JSON value already parsed (the server parses a body once)."""
        import numpy as np

        if type(data) is not dict or len(data) != 1:
            return None
        ((key, value),) = data.items()
        rows = self._rows(key, value)
        if rows is None:
            return None
        width = self._width
        for row in rows:
            if type(row) is not list or len(row) != width:
                return None
            for v in row:
                kind = type(v)
                if kind is not float and kind is not int:
                    return None  # bool, None, text, nested: the general path decides
        try:
            array = np.array(rows, dtype=np.float64)
        except OverflowError:  # an integer beyond a float's range
            return None
        if not np.isfinite(array).all():
            return None
        return Matrix(array, self.columns)

    def _rows(self, key: str, value: Any) -> list[Any] | None:
        if key == "dataframe_split":
            if type(value) is not dict or value.get("columns") != self.columns:
                return None
            if not set(value) <= {"columns", "data", "index"}:
                return None
            rows = value.get("data")
            return rows if type(rows) is list and rows else None
        if key not in ("dataframe_records", "instances", "inputs"):
            return None
        if type(value) is not list or not value:
            return None
        if type(value[0]) is list:
            return value if key != "dataframe_records" else None
        columns, names = self.columns, self._names
        rows = []
        for record in value:
            if type(record) is not dict or len(record) != self._width or record.keys() != names:
                return None
            rows.append([record[c] for c in columns])
        return rows

    def model_input(self, matrix: Matrix) -> Any:
        """What the model's methods take for ``matrix`` (see ``call_predict``)."""
        return self._to_input(matrix.array)

    def predict(self, matrix: Matrix) -> Any:
        from headrace.io.signature import call_predict

        return call_predict(self._model.model.predict, self._to_input(matrix.array))
