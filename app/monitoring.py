"""Model monitoring in the service: prediction counts, a latency histogram and input drift.

Drift is the Population Stability Index (PSI) per feature, of the rows the service has seen
against the training distribution the model carries (``metadata.json`` → ``reference``: per
feature, the bin edges, deciles of the training rows, and the share of training rows in each bin):

    PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)

with ``e_i`` the training share and ``a_i`` the served share of bin ``i``; an empty bin counts as
``EPSILON`` so the logarithm stays finite. Reading, as commonly used: below 0.1 stable, 0.1–0.25 a
moderate shift, above 0.25 a significant shift (retrain or investigate). ``infra model drift``
computes the same statistic from logged requests.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

EPSILON = 1e-4
BINS = 10
WINDOW = 2000  # rows the service keeps for its drift gauge
MODERATE, SIGNIFICANT = 0.1, 0.25


def reference(x: np.ndarray, features: Sequence[str], bins: int = BINS) -> dict[str, dict[str, list[float]]]:
    """Per feature: inner bin edges (quantiles of the training rows) and the share in each bin."""
    out: dict[str, dict[str, list[float]]] = {}
    for j, name in enumerate(features):
        column = np.asarray(x[:, j], dtype=float)
        edges = sorted(set(np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1]).round(9).tolist()))
        out[name] = {"edges": edges, "proportions": shares(column.tolist(), edges)}
    return out


def shares(values: Iterable[float], edges: Sequence[float]) -> list[float]:
    """The share of ``values`` in each of the ``len(edges) + 1`` bins (right-open, as bisect)."""
    counts = [0] * (len(edges) + 1)
    n = 0
    for v in values:
        counts[bisect.bisect_right(edges, v)] += 1
        n += 1
    return [c / n if n else 0.0 for c in counts]


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} expected bins, {len(actual)} actual")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def drift(ref: Mapping[str, Mapping[str, Sequence[float]]], rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """PSI per feature of ``rows`` against ``ref``."""
    return {name: psi(r["proportions"], shares((row[name] for row in rows), r["edges"])) for name, r in ref.items()}


class ModelMetrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self, reference_bins: Mapping[str, Any] | None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.predictions = Counter(
            "model_predictions", "Rows predicted, by model version and predicted class", ["model_version", "label"], registry=self.registry
        )
        self.latency = Histogram(
            "model_predict_latency_seconds",
            "Time to predict one request (all its rows)",
            ["model_version"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        self.psi = Gauge(
            "model_feature_psi", f"PSI of the last {WINDOW} rows against the training distribution", ["feature"], registry=self.registry
        )
        self.window_rows = Gauge("model_drift_window_rows", "Rows in the drift window", registry=self.registry)
        self.reference = reference_bins
        self._rows: deque[Mapping[str, float]] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()
        if reference_bins:
            for name in reference_bins:
                self.psi.labels(feature=name).set(0.0)

    def observe(self, version: str, rows: Sequence[Mapping[str, float]], labels: Sequence[str], seconds: float) -> None:
        self.latency.labels(model_version=version).observe(seconds)
        for label in labels:
            self.predictions.labels(model_version=version, label=label).inc()
        with self._lock:
            self._rows.extend(rows)

    def refresh(self) -> None:
        """Recompute the drift gauges (on each scrape; 2,000 rows × a few features is cheap)."""
        with self._lock:
            rows = list(self._rows)
        self.window_rows.set(len(rows))
        if self.reference and rows:
            for name, value in drift(self.reference, rows).items():
                self.psi.labels(feature=name).set(round(value, 6))
