"""The model's inputs: one definition shared by training and inference.

The dataset's column names become snake_case field names (``od280/od315_of_diluted_wines`` is not
a usable JSON field); both the training matrix and a request's rows are built by :func:`to_matrix`,
so the two can never disagree on the column order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

# the dataset's own column names, in its order (sklearn.datasets.load_wine().feature_names)
SOURCE_COLUMNS: tuple[str, ...] = (
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280/od315_of_diluted_wines",
    "proline",
)


def field_name(column: str) -> str:
    """``od280/od315_of_diluted_wines`` → ``od280_od315_of_diluted_wines``."""
    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


FEATURES: tuple[str, ...] = tuple(field_name(c) for c in SOURCE_COLUMNS)

Matrix = npt.NDArray[np.float64]


def to_matrix(rows: Sequence[Mapping[str, float]], features: Sequence[str] = FEATURES) -> Matrix:
    """Rows of named values → a float64 matrix in the model's column order."""
    return np.array([[float(row[f]) for f in features] for row in rows], dtype=np.float64).reshape(len(rows), len(features))


# Heavily right-skewed measurements (proline spans 278..1680): log1p evens them out before scaling.
LOG_FEATURES: tuple[str, ...] = ("malic_acid", "magnesium", "color_intensity", "proline")
_LOG_COLUMNS = [FEATURES.index(f) for f in LOG_FEATURES]


def log_skewed(x: Matrix) -> Matrix:
    """The feature step inside the model: log1p of :data:`LOG_FEATURES`, other columns unchanged.

    A module-level function, so the saved model refers to it by name and inference runs this very code.
    """
    out = np.array(x, dtype=np.float64, copy=True)
    out[:, _LOG_COLUMNS] = np.log1p(out[:, _LOG_COLUMNS])
    return out
