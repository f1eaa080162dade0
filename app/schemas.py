"""The HTTP contract: request and response bodies, validated by pydantic.

A row is an object with every feature as a finite, non-negative number and nothing else, so a
misspelt or missing field is a 422 naming it, never a silent zero or a 500.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.features import FEATURES

MAX_BATCH = 256

_Measurement = Annotated[float, Field(ge=0, allow_inf_nan=False)]

Instance: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "Instance",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{name: (_Measurement, ...) for name in FEATURES},
)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: Annotated[list[Instance], Field(min_length=1, max_length=MAX_BATCH)]


class PredictionOut(BaseModel):
    label: str
    class_index: int
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    model_version: str
    predictions: list[PredictionOut]


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    error: str
    detail: list[FieldProblem] = []


class Metadata(BaseModel):
    model_name: str
    model_version: str
    model_git_sha: str
    service_git_sha: str
    trained_at: str
    features: list[str]
    classes: list[str]
    metrics: dict[str, object]
    data_fingerprint: str
    code_fingerprint: str
    max_batch: int
    # where the model came from: the registry and alias of the environment (None: a local MODEL_DIR)
    registry_uri: str | None = None
    registry_alias: str | None = None
