"""The HTTP service: ``/healthz``, ``/readyz``, ``/predict``, ``/metadata``, ``/metrics``.

The model is loaded once, when the app starts (or handed in by the Lambda handler), never per
request. Every request is logged as one JSON line with its id, status and duration.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import logs, registry
from app.model import Model, ModelLoadError
from app.monitoring import ModelMetrics
from app.schemas import MAX_BATCH, ErrorResponse, FieldProblem, Metadata, PredictionOut, PredictRequest, PredictResponse
from app.settings import Settings

log = logging.getLogger("app.service")

# a full batch of MAX_BATCH rows is ~100 kB of JSON; anything far larger is refused before parsing
MAX_BODY_BYTES = 1_000_000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestLog:
    """Pure ASGI middleware: request id, body-size limit, one log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            length = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            length = 0
        try:
            if length > MAX_BODY_BYTES:
                body = ErrorResponse(error=f"request body of {length} bytes exceeds {MAX_BODY_BYTES}").model_dump_json().encode()
                await send_with_id({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
                await send_with_id({"type": "http.response.body", "body": body})
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                },
            )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "instances", 0, "alcohol")`` → ``instances[0].alcohol``."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def create_app(
    settings: Settings | None = None, *, model: Model | None = None, source: tuple[str | None, str | None] = (None, None)
) -> FastAPI:
    """The app; with ``model`` given (Lambda, tests) nothing is loaded at start-up."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.model is None:
            try:
                loaded = registry.load(settings)
                app.state.model, app.state.registry = loaded.model, (loaded.uri, loaded.alias)
                app.state.metrics = ModelMetrics(loaded.model.metadata.get("reference"))
                where = {"registry": loaded.uri, "alias": loaded.alias} if loaded.uri else {"model_dir": str(settings.model_dir)}
                log.info("model loaded", extra={"model_version": loaded.model.version, **where})
            except ModelLoadError as exc:
                app.state.load_error = str(exc)
                log.error("model not loaded", extra={"reason": str(exc)})
        yield

    app = FastAPI(title="model-server", version="1", lifespan=lifespan)
    app.state.model = model
    app.state.load_error = None
    app.state.settings = settings
    app.state.registry = source  # (registry URI, alias) the model came from
    app.state.metrics = ModelMetrics(model.metadata.get("reference") if model else None)

    def _not_ready(request: Request) -> JSONResponse:
        reason = request.app.state.load_error or "model not loaded yet"
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [FieldProblem(field=_field(e.get("loc", ())), message=e.get("msg", "invalid")) for e in exc.errors()]
        body = ErrorResponse(error="invalid request: " + "; ".join(f"{p.field}: {p.message}" for p in problems[:5]), detail=problems)
        return JSONResponse(status_code=422, content=body.model_dump())

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "model not loaded"}})
    async def readyz(request: Request) -> Any:
        """Readiness: the model is loaded and can predict."""
        current: Model | None = request.app.state.model
        if current is None:
            return _not_ready(request)
        return {"status": "ready", "model_version": current.version}

    @app.post("/predict", response_model=PredictResponse, responses={422: {"model": ErrorResponse}, 503: {"description": "not ready"}})
    async def predict(body: PredictRequest, request: Request) -> Any:
        """One or a batch (up to MAX_BATCH) of rows → class and probabilities per row."""
        current: Model | None = request.app.state.model
        if current is None:
            return _not_ready(request)
        # rows are validated and small: predicting inline is cheaper than a thread hop
        rows = [row.model_dump() for row in body.instances]
        start = time.perf_counter()
        predictions = current.predict(rows)
        request.app.state.metrics.observe(current.version, rows, [p.label for p in predictions], time.perf_counter() - start)
        # the rows are logged so that `infra model drift` can compare a window of traffic with training
        log.info("prediction", extra={"event": "prediction", "model_version": current.version, "rows": rows})
        return PredictResponse(
            model_version=current.version,
            predictions=[PredictionOut(label=p.label, class_index=p.class_index, probabilities=p.probabilities) for p in predictions],
        )

    @app.get("/metadata", response_model=Metadata, responses={503: {"description": "not ready"}})
    async def metadata(request: Request) -> Any:
        """The model being served: version, metrics, fingerprints, git shas."""
        current: Model | None = request.app.state.model
        if current is None:
            return _not_ready(request)
        m = current.metadata
        return Metadata(
            model_name=m["name"],
            model_version=current.version,
            model_git_sha=m.get("git_sha", "unknown"),
            service_git_sha=settings.git_sha,
            trained_at=m.get("created_at", ""),
            features=list(current.features),
            classes=list(current.classes),
            metrics={k: m["metrics"][k] for k in ("accuracy", "f1_macro", "log_loss", "baseline_accuracy", "n_train", "n_test")},
            data_fingerprint=m["data"]["fingerprint"],
            code_fingerprint=m["code"]["fingerprint"],
            max_batch=MAX_BATCH,
            registry_uri=request.app.state.registry[0],
            registry_alias=request.app.state.registry[1],
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus metrics: predictions by version and class, predict latency, PSI per feature."""
        state: ModelMetrics = request.app.state.metrics
        if state.reference is None and request.app.state.model is not None:
            state.reference = request.app.state.model.metadata.get("reference")
        state.refresh()
        return PlainTextResponse(generate_latest(state.registry).decode(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestLog)
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn calls (``uvicorn --factory app.service:app_from_env``)."""
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    return create_app(settings)
