"""Training pipeline, one visible step per function: load → clean → features → split → train →
evaluate → gate → write. ``python -m app.train`` runs them in order (see :func:`run`).

A run is reproducible: the split and the solver take the seed, the artifact's version is derived
from the data fingerprint, the code fingerprint and the parameters, so the same inputs give the
same version and the same metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, precision_recall_fscore_support
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from app import features as feature_defs
from app import monitoring
from app.features import FEATURES, SOURCE_COLUMNS, Matrix

MODEL_NAME = "wine-cultivar"
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
LATEST_FILE = "LATEST"
# the files whose code decides what the model computes: their hash is the code fingerprint
CODE_FILES = ("features.py", "pipeline.py", "monitoring.py")
# held-out accuracy below this and no artifact is written (the majority class alone scores 0.40)
ACCURACY_FLOOR = 0.90
MIN_ROWS = 100
MIN_ROWS_PER_CLASS = 20

Labels = npt.NDArray[np.int64]


class DataValidationError(ValueError):
    """The dataset failed a check; nothing was trained."""


class QualityGateError(RuntimeError):
    """The trained model scored below the floor; nothing was written."""


@dataclass(frozen=True)
class Dataset:
    x: Matrix
    y: Labels
    features: tuple[str, ...]
    classes: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class CleaningReport:
    rows_in: int
    dropped_non_finite: int
    dropped_duplicates: int

    @property
    def rows_out(self) -> int:
        return self.rows_in - self.dropped_non_finite - self.dropped_duplicates


@dataclass(frozen=True)
class Split:
    x_train: Matrix
    x_test: Matrix
    y_train: Labels
    y_test: Labels


@dataclass(frozen=True)
class TrainConfig:
    out_dir: Path
    seed: int = 42
    test_size: float = 0.25
    c: float = 1.0
    max_iter: int = 1000
    accuracy_floor: float = ACCURACY_FLOOR

    def params(self) -> dict[str, Any]:
        return {"model": "LogisticRegression", "C": self.c, "max_iter": self.max_iter, "test_size": self.test_size, "seed": self.seed}


@dataclass(frozen=True)
class TrainResult:
    version: str
    path: Path
    metrics: dict[str, Any]
    metadata: dict[str, Any] = field(repr=False)


# 1. load -----------------------------------------------------------------------------------------
def load() -> Dataset:
    """The wine dataset that ships inside scikit-learn (no download)."""
    bunch = load_wine()
    columns = tuple(bunch.feature_names)
    if columns != SOURCE_COLUMNS:
        raise DataValidationError(f"load_wine columns changed: expected {SOURCE_COLUMNS}, got {columns}")
    return Dataset(
        x=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.int64),
        features=FEATURES,
        classes=tuple(str(c) for c in bunch.target_names),
        source=f"sklearn.datasets.load_wine (scikit-learn {sklearn.__version__})",
    )


# 2. clean and validate ---------------------------------------------------------------------------
def clean(ds: Dataset) -> tuple[Dataset, CleaningReport]:
    """Drop rows with missing/infinite values and exact duplicates, then check what is left."""
    if ds.x.ndim != 2 or ds.x.shape[1] != len(ds.features):
        raise DataValidationError(f"expected {len(ds.features)} feature columns, got shape {ds.x.shape}")
    if ds.x.shape[0] != ds.y.shape[0]:
        raise DataValidationError(f"{ds.x.shape[0]} rows of features but {ds.y.shape[0]} labels")
    finite = np.isfinite(ds.x).all(axis=1)
    x, y = ds.x[finite], ds.y[finite]
    rows = np.hstack([x, y[:, None].astype(np.float64)])
    _, first = np.unique(rows, axis=0, return_index=True)
    keep = np.sort(first)
    report = CleaningReport(rows_in=len(ds.y), dropped_non_finite=int((~finite).sum()), dropped_duplicates=len(y) - len(keep))
    x, y = x[keep], y[keep]
    if len(y) < MIN_ROWS:
        raise DataValidationError(f"only {len(y)} usable rows after cleaning; need at least {MIN_ROWS}")
    negative = sorted({ds.features[j] for j in np.argwhere(x < 0)[:, 1]})
    if negative:
        raise DataValidationError(f"negative values in {negative}: every feature is a non-negative measurement")
    counts = np.bincount(y, minlength=len(ds.classes))
    if len(counts) != len(ds.classes):
        raise DataValidationError(f"labels outside 0..{len(ds.classes) - 1}")
    small = [ds.classes[i] for i, n in enumerate(counts) if n < MIN_ROWS_PER_CLASS]
    if small:
        raise DataValidationError(f"classes {small} have fewer than {MIN_ROWS_PER_CLASS} rows")
    return Dataset(x=x, y=y, features=ds.features, classes=ds.classes, source=ds.source), report


# 3. features -------------------------------------------------------------------------------------
def feature_steps() -> list[tuple[str, Any]]:
    """The feature transform, kept inside the model so that inference applies the same one."""
    return [("log_skewed", FunctionTransformer(feature_defs.log_skewed)), ("scale", StandardScaler())]


# 4. split ----------------------------------------------------------------------------------------
def split(ds: Dataset, *, seed: int, test_size: float) -> Split:
    """A stratified held-out split: each class keeps its share in the test set."""
    x_train, x_test, y_train, y_test = train_test_split(ds.x, ds.y, test_size=test_size, random_state=seed, stratify=ds.y)
    return Split(x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test)


# 5. train ----------------------------------------------------------------------------------------
def train(data: Split, cfg: TrainConfig) -> Pipeline:
    model = Pipeline([*feature_steps(), ("classify", LogisticRegression(C=cfg.c, max_iter=cfg.max_iter, random_state=cfg.seed))])
    model.fit(data.x_train, data.y_train)
    return model


# 6. evaluate -------------------------------------------------------------------------------------
def evaluate(model: Pipeline, data: Split, classes: tuple[str, ...]) -> dict[str, Any]:
    predicted = model.predict(data.x_test)
    proba = model.predict_proba(data.x_test)
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(data.y_test, predicted, labels=labels, zero_division=0)
    majority = np.bincount(data.y_train).argmax()
    return {
        "accuracy": round(float(accuracy_score(data.y_test, predicted)), 6),
        "f1_macro": round(float(f1_score(data.y_test, predicted, average="macro")), 6),
        "log_loss": round(float(log_loss(data.y_test, proba, labels=labels)), 6),
        "baseline_accuracy": round(float((data.y_test == majority).mean()), 6),
        "per_class": {
            c: {"precision": round(float(p), 6), "recall": round(float(r), 6), "f1": round(float(f), 6), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(data.y_test, predicted, labels=labels).tolist(),
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
    }


def gate(metrics: dict[str, Any], floor: float) -> None:
    if metrics["accuracy"] < floor:
        raise QualityGateError(f"held-out accuracy {metrics['accuracy']:.3f} is below the floor {floor:g}; no artifact written")
    if metrics["accuracy"] <= metrics["baseline_accuracy"]:
        raise QualityGateError(f"accuracy {metrics['accuracy']:.3f} does not beat the majority-class baseline")


# 7. write ----------------------------------------------------------------------------------------
def data_fingerprint(ds: Dataset) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([ds.features, ds.classes]).encode())
    h.update(np.ascontiguousarray(ds.x).tobytes())
    h.update(np.ascontiguousarray(ds.y).tobytes())
    return "sha256:" + h.hexdigest()


def code_fingerprint() -> str:
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in CODE_FILES:
        h.update(name.encode() + b"\0" + (here / name).read_bytes())
    h.update(f"scikit-learn {sklearn.__version__} numpy {np.__version__}".encode())
    return "sha256:" + h.hexdigest()


def model_version(data_fp: str, code_fp: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps([data_fp, code_fp, params], sort_keys=True).encode()).hexdigest()
    return f"{MODEL_NAME}-{digest[:12]}"


def git_sha() -> str:
    """The commit the training code came from: $GIT_SHA (set by CI/image builds), else git, else "unknown"."""
    if sha := os.environ.get("GIT_SHA"):
        return sha
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5, check=False
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def write_artifact(model: Pipeline, metadata: dict[str, Any], out_dir: Path) -> Path:
    """``<out_dir>/<version>/{model.joblib,metadata.json}`` written atomically, then ``LATEST`` names it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    version: str = metadata["version"]
    final = out_dir / version
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=out_dir))
    try:
        joblib.dump(model, tmp / MODEL_FILE)
        digest = hashlib.sha256((tmp / MODEL_FILE).read_bytes()).hexdigest()
        metadata = {**metadata, "artifact": {"file": MODEL_FILE, "sha256": digest}}
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (out_dir / f".{LATEST_FILE}.tmp").write_text(version + "\n")
    (out_dir / f".{LATEST_FILE}.tmp").replace(out_dir / LATEST_FILE)
    return final


def run(cfg: TrainConfig) -> TrainResult:
    raw = load()
    ds, report = clean(raw)
    data = split(ds, seed=cfg.seed, test_size=cfg.test_size)
    model = train(data, cfg)
    metrics = evaluate(model, data, ds.classes)
    gate(metrics, cfg.accuracy_floor)
    data_fp, code_fp, params = data_fingerprint(ds), code_fingerprint(), cfg.params()
    version = model_version(data_fp, code_fp, params)
    metadata = {
        "name": MODEL_NAME,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "features": list(ds.features),
        "classes": list(ds.classes),
        "params": params,
        "metrics": metrics,
        "accuracy_floor": cfg.accuracy_floor,
        "data": {
            "source": ds.source,
            "fingerprint": data_fp,
            "rows_in": report.rows_in,
            "rows_used": report.rows_out,
            "dropped_non_finite": report.dropped_non_finite,
            "dropped_duplicates": report.dropped_duplicates,
        },
        "code": {"fingerprint": code_fp, "files": [f"app/{f}" for f in CODE_FILES]},
        "runtime": {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": np.__version__},
        # the training distribution the service's drift statistic compares traffic with
        "reference": monitoring.reference(data.x_train, ds.features),
    }
    path = write_artifact(model, metadata, cfg.out_dir)
    return TrainResult(version=version, path=path, metrics=metrics, metadata=metadata)
