"""Drift detection: column, dataset, prediction and target drift between two tables.

``DriftDetector().fit(reference).score(current)`` (or ``drift(reference, current)``)
compares each column with a test chosen by its type and the reference's size, or the
one given per column; see :mod:`headrace.drift.detector` and
:mod:`headrace.drift.methods`.
"""

from headrace.drift.detector import (
    ColumnDrift,
    ColumnTest,
    DatasetDrift,
    DriftDetector,
    DriftError,
    drift,
)

__all__ = ["ColumnDrift", "ColumnTest", "DatasetDrift", "DriftDetector", "DriftError", "drift"]
