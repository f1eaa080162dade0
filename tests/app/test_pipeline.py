"""Each training step on its own, then the whole run: reproducible, gated, versioned."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app import pipeline
from app.features import FEATURES, LOG_FEATURES, log_skewed, to_matrix
from app.model import Model, ModelLoadError
from app.pipeline import DataValidationError, QualityGateError, TrainConfig, TrainResult

# the regression floor: the held-out accuracy this model must keep (it scores ~0.98; the majority class 0.40)
ACCURACY_FLOOR = 0.93


def test_load_reads_the_bundled_dataset() -> None:
    ds = pipeline.load()
    assert ds.x.shape == (178, 13)
    assert ds.features == FEATURES
    assert ds.classes == ("class_0", "class_1", "class_2")
    assert np.bincount(ds.y).tolist() == [59, 71, 48]


def test_clean_drops_non_finite_rows_and_duplicates() -> None:
    ds = pipeline.load()
    x = np.vstack([ds.x, ds.x[:3]])  # three exact duplicates
    y = np.concatenate([ds.y, ds.y[:3]])
    x[5, 2] = np.nan
    x[9, 0] = np.inf
    cleaned, report = pipeline.clean(replace(ds, x=x, y=y))
    assert (report.rows_in, report.dropped_non_finite, report.dropped_duplicates, report.rows_out) == (181, 2, 3, 176)
    assert cleaned.x.shape == (176, 13)
    assert np.isfinite(cleaned.x).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, y: (x.__setitem__((4, 3), -1.0), x, y)[1:], "negative values in ['alcalinity_of_ash']"),
        (lambda x, y: (x[:50], y[:50]), "only 50 usable rows"),
        (lambda x, y: (x[y != 2][:120].copy(), np.concatenate([y[y != 2][:110], np.full(10, 2)])), "['class_2'] have fewer than 20 rows"),
        (lambda x, y: (x[:, :12], y), "expected 13 feature columns"),
        (lambda x, y: (x, y[:-1]), "178 rows of features but 177 labels"),
    ],
)
def test_clean_rejects_bad_data(change, message: str) -> None:  # type: ignore[no-untyped-def]
    ds = pipeline.load()
    x, y = change(ds.x.copy(), ds.y.copy())
    with pytest.raises(DataValidationError) as err:
        pipeline.clean(replace(ds, x=x, y=y))
    assert message in str(err.value)


def test_feature_step_logs_only_the_skewed_columns() -> None:
    x = to_matrix([{f: float(i + 1) for i, f in enumerate(FEATURES)}])
    out = log_skewed(x)
    for j, f in enumerate(FEATURES):
        expected = np.log1p(j + 1) if f in LOG_FEATURES else j + 1
        assert out[0, j] == pytest.approx(expected), f
    assert x[0, FEATURES.index("proline")] == 13.0  # the input is not modified


def test_to_matrix_follows_the_feature_order_not_the_dict_order() -> None:
    values = {f: float(i) for i, f in enumerate(FEATURES)}
    reversed_dict = dict(reversed(list(values.items())))
    assert to_matrix([reversed_dict]).tolist() == [[float(i) for i in range(13)]]


def test_split_is_stratified_and_seeded() -> None:
    ds, _ = pipeline.clean(pipeline.load())
    a = pipeline.split(ds, seed=1, test_size=0.25)
    b = pipeline.split(ds, seed=1, test_size=0.25)
    c = pipeline.split(ds, seed=2, test_size=0.25)
    assert np.array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)
    assert len(a.y_test) == 45
    # each class keeps its share (59/71/48 of 178) within one row
    for k, n in enumerate(np.bincount(ds.y)):
        assert abs(np.sum(a.y_test == k) - n * 45 / 178) <= 1


def test_evaluate_counts_and_confusion_matrix_agree(trained: TrainResult) -> None:
    m = trained.metrics
    confusion = np.array(m["confusion_matrix"])
    assert confusion.sum() == m["n_test"] == 45
    assert m["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum(), abs=1e-6)
    assert [v["support"] for v in m["per_class"].values()] == confusion.sum(axis=1).tolist()


def test_accuracy_holds_the_regression_floor(trained: TrainResult) -> None:
    assert trained.metrics["accuracy"] >= ACCURACY_FLOOR
    assert trained.metrics["f1_macro"] >= ACCURACY_FLOOR
    assert trained.metrics["accuracy"] > trained.metrics["baseline_accuracy"] + 0.5


def test_gate_refuses_a_model_below_the_floor_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(QualityGateError, match=r"below the floor 0\.999"):
        pipeline.run(TrainConfig(out_dir=tmp_path / "models", accuracy_floor=0.999, c=0.0001))
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_run_is_reproducible(tmp_path: Path, trained: TrainResult) -> None:
    again = pipeline.run(TrainConfig(out_dir=tmp_path))
    assert again.version == trained.version
    assert again.metrics == trained.metrics
    other_seed = pipeline.run(TrainConfig(out_dir=tmp_path, seed=7))
    assert other_seed.version != trained.version
    assert (tmp_path / "LATEST").read_text().strip() == other_seed.version


def test_artifact_records_version_metrics_and_fingerprints(trained: TrainResult) -> None:
    meta = json.loads((trained.path / "metadata.json").read_text())
    assert trained.path.name == meta["version"] == trained.version
    assert meta["version"].startswith("wine-cultivar-")
    assert meta["metrics"] == trained.metrics
    assert meta["data"]["fingerprint"].startswith("sha256:") and meta["code"]["fingerprint"].startswith("sha256:")
    assert meta["data"]["rows_used"] == 178
    assert meta["features"] == list(FEATURES)
    assert meta["artifact"]["file"] == "model.joblib"


def test_data_fingerprint_changes_with_one_value() -> None:
    ds, _ = pipeline.clean(pipeline.load())
    x = ds.x.copy()
    x[0, 0] += 0.01
    assert pipeline.data_fingerprint(ds) != pipeline.data_fingerprint(replace(ds, x=x))
    assert pipeline.data_fingerprint(ds) == pipeline.data_fingerprint(replace(ds, x=ds.x.copy()))


def test_load_refuses_an_altered_artifact(tmp_path: Path, trained: TrainResult) -> None:
    copy = tmp_path / trained.version
    copy.mkdir()
    for f in trained.path.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    with (copy / "model.joblib").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelLoadError, match="sha256 does not match"):
        Model.load(copy)


def test_load_refuses_another_scikit_learn(tmp_path: Path, trained: TrainResult) -> None:
    copy = tmp_path / trained.version
    copy.mkdir()
    (copy / "model.joblib").write_bytes((trained.path / "model.joblib").read_bytes())
    meta = json.loads((trained.path / "metadata.json").read_text())
    meta["runtime"]["scikit-learn"] = "0.24.2"
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=r"trained with scikit-learn 0\.24\.2"):
        Model.load(copy)


def test_load_names_the_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=str(tmp_path)):
        Model.load(tmp_path)


def test_train_command_line(tmp_path: Path) -> None:
    from app.train import main

    assert main(["--out", str(tmp_path)]) == 0
    version = (tmp_path / "LATEST").read_text().strip()
    assert (tmp_path / version / "model.joblib").is_file()
    assert main(["--out", str(tmp_path / "gated"), "--accuracy-floor", "1.01"]) == 1
