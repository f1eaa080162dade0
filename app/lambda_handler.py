"""AWS Lambda entry point (``app.lambda_handler.handler``): the same FastAPI app and the same
inference code as the HTTP service, adapted to Lambda function-URL / API Gateway events by Mangum.

The model is loaded on the first invocation of an execution environment (the cold start) and kept
for every later one; Mangum's lifespan is off, so no invocation reloads it.
"""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from app import logs, registry
from app.service import create_app
from app.settings import Settings

_handler: Mangum | None = None


def _build() -> Mangum:
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    loaded = registry.load(settings)
    return Mangum(create_app(settings, model=loaded.model, source=(loaded.uri, loaded.alias)), lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = _build()
    return _handler(event, context)
