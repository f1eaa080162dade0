"""Runtime settings, from environment variables (the Deployment and the Lambda function set them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    model_dir: Path = Path("artifacts/models")
    git_sha: str = "unknown"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8080
    # the model registry (set by the stacks): the service loads the version the alias names
    model_registry_uri: str | None = None
    model_alias: str = "latest"
    model_cache: Path = Path("/tmp/models")

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            model_dir=Path(os.environ.get("MODEL_DIR", str(cls.model_dir))),
            git_sha=os.environ.get("GIT_SHA", cls.git_sha),
            log_level=os.environ.get("LOG_LEVEL", cls.log_level),
            host=os.environ.get("HOST", cls.host),
            port=int(os.environ.get("PORT", str(cls.port))),
            model_registry_uri=os.environ.get("MODEL_REGISTRY_URI") or None,
            model_alias=os.environ.get("MODEL_ALIAS", cls.model_alias),
            model_cache=Path(os.environ.get("MODEL_CACHE", str(cls.model_cache))),
        )
