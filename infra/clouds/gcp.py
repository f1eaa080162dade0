"""Google Cloud clients, made one way: the REST transport with Application Default Credentials (in
Actions: Workload Identity Federation through google-github-actions/auth), or, when
``GOOGLE_API_ENDPOINT`` is set, pointed at that local server with anonymous credentials (tests)."""

from __future__ import annotations

import os
from typing import Any

from infra.errors import InfraError

ENDPOINT_ENV = "GOOGLE_API_ENDPOINT"


def client(cls: Any, *, endpoint_env: str = ENDPOINT_ENV) -> Any:
    endpoint = os.environ.get(endpoint_env) or os.environ.get(ENDPOINT_ENV)
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return cls(transport="rest", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint})  # type: ignore[no-untyped-call]
    return cls(transport="rest")


# --- the Google REST APIs that have no client here (Service Usage, IAM, Resource Manager, Cloud
# Billing, Compute, Cloud Identity, Cloud Build v2, Artifact Registry), through google-auth ------
#
# Why REST through google-auth rather than a google-cloud-* client per API: bootstrap and preflight
# make about twenty calls over eight APIs; the clients would add six pinned dependencies (the
# Compute one alone is large) for calls that are one JSON request each. google-auth is already
# installed (google-cloud-storage needs it): AuthorizedSession refreshes Application Default
# Credentials (in Actions: Workload Identity Federation through google-github-actions/auth), and one
# override, GOOGLE_API_ENDPOINT (or GOOGLE_API_ENDPOINT_<SERVICE>, e.g. GOOGLE_API_ENDPOINT_COMPUTE),
# sends every call to a local server without credentials (the tests' fake, tests/fakes/google.py).
# REST shapes: the API references at https://cloud.google.com/<product>/docs/reference/rest.

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class GoogleApiError(InfraError):
    """A Google API call failed (not a 404): the URL, the status and Google's reason."""

    def __init__(self, method: str, url: str, status: int | None, message: str, reason: str = "") -> None:
        self.method, self.url, self.status, self.reason = method, url, status, reason
        super().__init__(f"Google API {method} {url}: {status if status is not None else ''} {reason} {message}".replace("  ", " ").strip())


class GoogleRest:
    """JSON over HTTPS to ``https://<service>.googleapis.com`` (or the override); ``None`` on 404."""

    def __init__(self, quota_project: str | None = None, timeout: float = 60.0) -> None:
        self.quota_project = quota_project
        self.timeout = timeout
        self._session: Any = None

    def url(self, service: str, path: str) -> str:
        endpoint = os.environ.get(f"{ENDPOINT_ENV}_{service.upper()}") or os.environ.get(ENDPOINT_ENV)
        base = endpoint.rstrip("/") if endpoint else f"https://{service}.googleapis.com"
        return base + path

    @property
    def session(self) -> Any:
        if self._session is None:
            if os.environ.get(ENDPOINT_ENV) or any(k.startswith(ENDPOINT_ENV + "_") for k in os.environ):
                import requests

                self._session = requests.Session()
            else:
                import google.auth
                from google.auth.exceptions import DefaultCredentialsError
                from google.auth.transport.requests import AuthorizedSession

                try:
                    credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
                except DefaultCredentialsError as exc:
                    raise InfraError(
                        f"no Google credentials ({exc}); run `gcloud auth application-default login` (in Actions: "
                        "google-github-actions/auth), or pass --cloud aws"
                    ) from None
                # user credentials bill API calls to a quota project: the environment's, unless one is set
                if self.quota_project and hasattr(credentials, "with_quota_project") and not getattr(credentials, "quota_project_id", None):
                    credentials = credentials.with_quota_project(self.quota_project)
                self._session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        return self._session

    def call(self, method: str, service: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        import requests

        url = self.url(service, path)
        try:
            response = self.session.request(method, url, json=body, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise GoogleApiError(method, url, None, f"unreachable ({exc})") from None
        if response.status_code == 404:
            return None
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {"error": {"message": response.text[:200]}}
        if response.status_code >= 300:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            raise GoogleApiError(method, url, response.status_code, str(error.get("message", "")), str(error.get("status", "")))
        return data

    def get(self, service: str, path: str, **params: Any) -> Any:
        return self.call("GET", service, path, params=params or None)

    def post(self, service: str, path: str, body: Any = None, **params: Any) -> Any:
        return self.call("POST", service, path, body if body is not None else {}, params=params or None)

    def patch(self, service: str, path: str, body: Any, **params: Any) -> Any:
        return self.call("PATCH", service, path, body, params=params or None)

    def pages(self, service: str, path: str, key: str, **params: Any) -> list[Any]:
        """Every item of a list answer (``nextPageToken``)."""
        items: list[Any] = []
        token = None
        while True:
            page = self.get(service, path, **params, **({"pageToken": token} if token else {})) or {}
            items += page.get(key, [])
            token = page.get("nextPageToken")
            if not token:
                return items

    def wait(self, service: str, operation: dict[str, Any], *, version: str = "v1", seconds: float = 600.0) -> dict[str, Any]:
        """Poll a long-running operation (``GET /<version>/<name>``) until ``done``; its ``response``."""
        import time

        delay = 0.1  # doubled up to 5 s: a quick operation is seen quickly, a slow one polled rarely
        deadline = time.monotonic() + seconds
        op = operation
        while not op.get("done"):
            if time.monotonic() > deadline:
                raise GoogleApiError(
                    "GET", self.url(service, f"/{version}/{op.get('name')}"), None, f"operation not done after {seconds:.0f} s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            op = self.get(service, f"/{version}/{op['name']}") or {"done": True, "error": {"message": "operation vanished"}}
        if "error" in op:
            raise GoogleApiError(
                "GET", self.url(service, f"/{version}/{op.get('name')}"), None, str(op["error"].get("message", op["error"]))
            )
        response: dict[str, Any] = op.get("response", {})
        return response
