"""The HTTP service over a real trained artifact: health, readiness, predictions, metadata, and
every kind of bad request answered with a 4xx that names the field."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.pipeline import TrainResult
from app.schemas import MAX_BATCH
from app.service import MAX_BODY_BYTES, create_app
from app.settings import Settings
from tests.app.conftest import row


def test_healthz_and_readyz(client: TestClient, trained: TrainResult) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": trained.version}


def test_not_ready_without_a_model(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(model_dir=tmp_path))) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert str(tmp_path) in ready.json()["reason"]
        assert c.post("/predict", json={"instances": [row()]}).status_code == 503
        assert c.get("/metadata").status_code == 503


def test_predict_one(client: TestClient, trained: TrainResult) -> None:
    r = client.post("/predict", json={"instances": [row(59)]})
    assert r.status_code == 200
    body = r.json()
    assert body["model_version"] == trained.version
    assert [p["label"] for p in body["predictions"]] == ["class_1"]


def test_predict_a_full_batch(client: TestClient) -> None:
    rows = [row(0), row(59), row(130)] * (MAX_BATCH // 3) + [row(0)] * (MAX_BATCH % 3)
    r = client.post("/predict", json={"instances": rows})
    assert r.status_code == 200
    labels = [p["label"] for p in r.json()["predictions"]]
    assert len(labels) == MAX_BATCH
    assert labels[:3] == ["class_0", "class_1", "class_2"]


def _broken(field: str, value: Any) -> dict[str, Any]:
    r = row()
    if value is None:
        del r[field]
    else:
        r[field] = value
    return {"instances": [row(), r]}


BAD_REQUESTS = [
    ("missing-field", _broken("hue", None), "instances[1].hue", "Field required"),
    ("wrong-type", _broken("alcohol", "thirteen"), "instances[1].alcohol", "valid number"),
    ("negative", _broken("proline", -5), "instances[1].proline", "greater than or equal to 0"),
    ("unknown-field", {"instances": [{**row(), "colour": 1}]}, "instances[0].colour", "Extra inputs"),
    ("empty-batch", {"instances": []}, "instances", "at least 1 item"),
    ("oversized-batch", {"instances": [row()] * (MAX_BATCH + 1)}, "instances", f"at most {MAX_BATCH} items"),
    ("rows-as-lists", {"instances": [[14.23, 1.71]]}, "instances[0]", "valid dictionary"),
    ("not-a-list", {"instances": row()}, "instances", "valid list"),
    ("no-instances", {"rows": [row()]}, "instances", "Field required"),
    ("body-is-a-list", [row()], "body", "valid dictionary"),
]


@pytest.mark.parametrize(("body", "field", "message"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_is_a_422_naming_the_field(client: TestClient, body: Any, field: str, message: str) -> None:
    r = client.post("/predict", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["field"] == field and message in d["message"] for d in detail), detail
    assert field in r.json()["error"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(client: TestClient, literal: str) -> None:
    body = json.dumps({"instances": [row()]}).replace("14.23", literal)
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "instances[0].alcohol"


def test_malformed_json_is_a_422(client: TestClient) -> None:
    r = client.post("/predict", content='{"instances": [', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["error"]


def test_oversized_body_is_refused_before_parsing(client: TestClient) -> None:
    r = client.post("/predict", content=b"x" * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert str(MAX_BODY_BYTES) in r.json()["error"]


def test_metadata(client: TestClient, trained: TrainResult) -> None:
    meta = client.get("/metadata").json()
    assert meta["model_version"] == trained.version
    assert meta["service_git_sha"] == "abc1234"
    assert meta["metrics"]["accuracy"] == trained.metrics["accuracy"]
    assert meta["data_fingerprint"] == trained.metadata["data"]["fingerprint"]
    assert meta["max_batch"] == MAX_BATCH


def test_each_request_is_logged_once_as_structured_fields(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.service"):
        r = client.post("/predict", json={"instances": [row()]}, headers={"x-request-id": "req-42"})
    assert r.headers["x-request-id"] == "req-42"
    records = [rec for rec in caplog.records if rec.getMessage() == "request"]
    assert len(records) == 1
    rec = records[0]
    assert (rec.request_id, rec.method, rec.path, rec.status) == ("req-42", "POST", "/predict", 200)  # type: ignore[attr-defined]
    assert rec.duration_ms > 0  # type: ignore[attr-defined]


def test_json_formatter_writes_one_object_per_line() -> None:
    from app.logs import JsonFormatter

    record = logging.LogRecord("app.service", logging.INFO, __file__, 1, "request", (), None)
    record.status = 200
    line = JsonFormatter().format(record)
    parsed = json.loads(line)
    assert parsed["msg"] == "request" and parsed["status"] == 200 and parsed["level"] == "info"
    assert "\n" not in line


def test_model_is_loaded_once_not_per_request(client: TestClient) -> None:
    loaded = client.app.state.model  # type: ignore[attr-defined]
    for _ in range(3):
        client.post("/predict", json={"instances": [row()]})
    assert client.app.state.model is loaded  # type: ignore[attr-defined]
