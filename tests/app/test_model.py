"""The inference code the service and the Lambda handler share."""

from __future__ import annotations

import pytest

from app.model import Model
from tests.app.conftest import DATASET_CLASSES, row


@pytest.mark.parametrize("index", sorted(DATASET_CLASSES))
def test_predicts_the_class_of_known_rows(model: Model, index: int) -> None:
    (prediction,) = model.predict([row(index)])
    assert prediction.label == DATASET_CLASSES[index]
    assert prediction.class_index == int(DATASET_CLASSES[index][-1])


def test_probabilities_sum_to_one_and_pick_the_label(model: Model) -> None:
    predictions = model.predict([row(0), row(59), row(130)])
    assert [p.label for p in predictions] == ["class_0", "class_1", "class_2"]
    for p in predictions:
        assert set(p.probabilities) == set(model.classes)
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert max(p.probabilities, key=p.probabilities.__getitem__) == p.label


def test_batch_equals_single_predictions(model: Model) -> None:
    rows = [row(i) for i in (0, 59, 130)]
    assert model.predict(rows) == [model.predict([r])[0] for r in rows]
    assert model.predict([]) == []
