"""Google Cloud clients, made one way: the REST transport with Application Default Credentials (in
Actions: Workload Identity Federation through google-github-actions/auth), or, when
``GOOGLE_API_ENDPOINT`` is set, pointed at that local server with anonymous credentials (tests)."""

from __future__ import annotations

import os
from typing import Any

ENDPOINT_ENV = "GOOGLE_API_ENDPOINT"


def client(cls: Any, *, endpoint_env: str = ENDPOINT_ENV) -> Any:
    endpoint = os.environ.get(endpoint_env) or os.environ.get(ENDPOINT_ENV)
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return cls(transport="rest", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint})  # type: ignore[no-untyped-call]
    return cls(transport="rest")
