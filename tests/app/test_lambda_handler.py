"""The Lambda handler with real function-URL events.

``events/function_url_post.json`` follows the request payload documented for Lambda function URLs
(payload format 2.0, https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads,
read 2026-11-26), as sent to a URL with AWS_IAM auth (the ``authorizer.iam`` block).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import lambda_handler
from app.pipeline import TrainResult
from tests.app.conftest import row

EVENT = json.loads((Path(__file__).parent / "events" / "function_url_post.json").read_text())


class Context:
    """The attributes of the Lambda context object that a handler may read."""

    function_name = "mlp-staging-predict"
    memory_limit_in_mb = 1024
    aws_request_id = "8f3f5a3e-2c4b-4b8e-9a51-1d2c3b4a5f60"
    invoked_function_arn = "arn:aws:lambda:us-east-1:222222222222:function:mlp-staging-predict"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def handler(trained: TrainResult, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("MODEL_DIR", str(trained.path))
    monkeypatch.setenv("GIT_SHA", "feedbee")
    monkeypatch.setattr(lambda_handler, "_handler", None)  # a fresh execution environment (cold start)
    yield lambda_handler.handler


def _event(method: str, path: str, body: Any = None, *, base64_body: bool = False) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    if body is None:
        event.pop("body")
        event["headers"].pop("content-type")
    else:
        raw = json.dumps(body).encode()
        event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode()
        event["isBase64Encoded"] = base64_body
    return event


@pytest.mark.parametrize("base64_body", [False, True])
def test_predict_through_a_function_url_event(handler: Any, trained: TrainResult, base64_body: bool) -> None:
    response = handler(_event("POST", "/predict", {"instances": [row(0), row(130)]}, base64_body=base64_body), Context())
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/json"
    body = json.loads(response["body"])
    assert body["model_version"] == trained.version
    assert [p["label"] for p in body["predictions"]] == ["class_0", "class_2"]


def test_same_answer_as_the_http_service(handler: Any, client: Any) -> None:
    request = {"instances": [row(59)]}
    via_lambda = json.loads(handler(_event("POST", "/predict", request), Context())["body"])
    via_http = client.post("/predict", json=request).json()
    assert via_lambda == via_http


def test_bad_request_is_a_422_naming_the_field(handler: Any) -> None:
    bad = row()
    del bad["hue"]
    response = handler(_event("POST", "/predict", {"instances": [bad]}), Context())
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["detail"][0]["field"] == "instances[0].hue"


def test_health_metadata_and_model_loaded_once(handler: Any) -> None:
    assert handler(_event("GET", "/readyz"), Context())["statusCode"] == 200
    first = lambda_handler._handler
    meta = json.loads(handler(_event("GET", "/metadata"), Context())["body"])
    assert meta["service_git_sha"] == "feedbee"
    assert lambda_handler._handler is first  # warm invocations reuse the loaded app and model
