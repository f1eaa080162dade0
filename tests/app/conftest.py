"""Fixtures for the app: one real training run per session, the service over its artifact."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.model import Model
from app.pipeline import TrainConfig, TrainResult, run
from app.service import create_app
from app.settings import Settings

# rows of the bundled dataset (sklearn.datasets.load_wine), one per class, with their class
DATASET_ROWS = {
    0: [14.23, 1.71, 2.43, 15.6, 127.0, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92, 1065.0],
    59: [12.37, 0.94, 1.36, 10.6, 88.0, 1.98, 0.57, 0.28, 0.42, 1.95, 1.05, 1.82, 520.0],
    130: [12.86, 1.35, 2.32, 18.0, 122.0, 1.51, 1.25, 0.21, 0.94, 4.1, 0.76, 1.29, 630.0],
}
DATASET_CLASSES = {0: "class_0", 59: "class_1", 130: "class_2"}


def row(index: int = 0) -> dict[str, float]:
    from app.features import FEATURES

    return dict(zip(FEATURES, DATASET_ROWS[index], strict=True))


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return run(TrainConfig(out_dir=tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="session")
def model(trained: TrainResult) -> Model:
    return Model.load(trained.path.parent)


@pytest.fixture
def client(trained: TrainResult) -> Iterator[TestClient]:
    """The service as deployed: it loads the model itself at start-up, from MODEL_DIR's directory."""
    app = create_app(Settings(model_dir=trained.path.parent, git_sha="abc1234"))
    with TestClient(app) as c:
        yield c
