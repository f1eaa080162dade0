"""Inference: load a model artifact once, predict many times. The HTTP service and the Lambda
handler both call :meth:`Model.predict`; nothing here knows about HTTP."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn

from app.features import FEATURES, Matrix, to_matrix
from app.pipeline import LATEST_FILE, METADATA_FILE, MODEL_FILE


class ModelLoadError(RuntimeError):
    """The artifact is missing, altered or incompatible; the message names the file."""


@dataclass(frozen=True)
class Prediction:
    label: str
    class_index: int
    probabilities: dict[str, float]


def resolve(path: Path) -> Path:
    """A version directory, or a directory of versions whose ``LATEST`` file names one."""
    if (path / METADATA_FILE).is_file():
        return path
    latest = path / LATEST_FILE
    if latest.is_file():
        return path / latest.read_text().strip()
    raise ModelLoadError(f"{path}: no {METADATA_FILE} and no {LATEST_FILE} file; run `make train` or set MODEL_DIR")


class Model:
    def __init__(self, estimator: Any, metadata: dict[str, Any]) -> None:
        self.estimator = estimator
        self.metadata = metadata
        self.features: tuple[str, ...] = tuple(metadata["features"])
        self.classes: tuple[str, ...] = tuple(metadata["classes"])
        if self.features != FEATURES:
            raise ModelLoadError(f"model {metadata.get('version')} expects features {self.features}; this code serves {FEATURES}")

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @classmethod
    def load(cls, path: Path) -> Model:
        directory = resolve(Path(path))
        meta_file, model_file = directory / METADATA_FILE, directory / MODEL_FILE
        try:
            metadata = json.loads(meta_file.read_text())
            blob = model_file.read_bytes()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{directory}: cannot read the artifact: {exc}") from exc
        expected = metadata.get("artifact", {}).get("sha256")
        if hashlib.sha256(blob).hexdigest() != expected:
            raise ModelLoadError(f"{model_file}: sha256 does not match {meta_file} (altered or truncated); retrain")
        trained_with = metadata.get("runtime", {}).get("scikit-learn")
        if trained_with != sklearn.__version__:
            raise ModelLoadError(f"{model_file}: trained with scikit-learn {trained_with}, running {sklearn.__version__}; retrain")
        # the sha256 above ties the pickle to the metadata this pipeline wrote
        return cls(joblib.load(model_file), metadata)

    def predict_matrix(self, x: Matrix) -> list[Prediction]:
        proba = self.estimator.predict_proba(x)
        best = np.argmax(proba, axis=1)
        return [
            Prediction(
                label=self.classes[int(i)],
                class_index=int(i),
                probabilities={c: round(float(p), 6) for c, p in zip(self.classes, row, strict=True)},
            )
            for i, row in zip(best, proba, strict=True)
        ]

    def predict(self, rows: Sequence[Mapping[str, float]]) -> list[Prediction]:
        if not rows:
            return []
        return self.predict_matrix(to_matrix(rows, self.features))
