"""The drift workload of ``../shared/peers/drift/gen.py``, reproduced: a reference and a
current frame of N rows x 20 columns.

- 15 numeric columns ``n0``..``n14`` cycling through four shapes (normal(0, 1),
  lognormal(0, 0.5), uniform(0, 1), exponential(1)), each re-centred on its own mean;
- 5 categorical columns ``c0``..``c4`` with 20 levels ``v00``..``v19`` drawn with
  Zipf-like weights (1 / rank^0.8), as object strings (what pandas users hold).

The current frame (seed 2; the reference is seed 1) shifts five columns: ``n0`` by +0.5
standard deviations, ``n1`` scaled by 1.5, ``n2`` by +0.05 sd (tiny), ``c0`` strongly
reweighted (30% of the mass moved to the reversed order), ``c1`` slightly (1% of the
mass moved from the first level to the last). Pure numpy + pandas: each peer's
environment makes the same frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
LEVELS = 20
SHIFTED = ("n0", "n1", "n2", "c0", "c1")


def _numbers(rng: np.random.Generator, index: int, rows: int) -> np.ndarray:
    shape = index % 4
    if shape == 0:
        return rng.normal(0.0, 1.0, rows)
    if shape == 1:
        return rng.lognormal(0.0, 0.5, rows)
    if shape == 2:
        return rng.uniform(0.0, 1.0, rows)
    return rng.exponential(1.0, rows)


def _weights(kind: str) -> np.ndarray:
    weights = 1.0 / np.arange(1, LEVELS + 1) ** 0.8
    weights /= weights.sum()
    if kind == "strong":
        weights = 0.7 * weights + 0.3 * weights[::-1]
        weights /= weights.sum()
    elif kind == "tiny":
        weights = weights.copy()
        weights[0] -= 0.01
        weights[-1] += 0.01
    return weights


def frame(rows: int, *, current: bool) -> pd.DataFrame:
    rng = np.random.default_rng(2 if current else 1)
    columns: dict[str, object] = {}
    for index, name in enumerate(NUMERIC):
        values = _numbers(rng, index, rows)
        mean, sd = values.mean(), values.std()
        scale = 1.5 if current and name == "n1" else 1.0
        shift = {"n0": 0.5, "n2": 0.05}.get(name, 0.0) if current else 0.0
        columns[name] = (values - mean) * scale + mean + shift * sd
    levels = np.array([f"v{j:02d}" for j in range(LEVELS)], dtype=object)
    for name in CATEGORICAL:
        kind = {"c0": "strong", "c1": "tiny"}.get(name, "base") if current else "base"
        columns[name] = levels[rng.choice(LEVELS, size=rows, p=_weights(kind))]
    return pd.DataFrame(columns)
