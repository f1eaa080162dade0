"""The GitHub REST API, made one way: stdlib ``urllib``, the token from ``$GITHUB_TOKEN``, the API
from ``$GITHUB_API_URL`` (default https://api.github.com; Actions sets it, the tests point it at the
local fake in ``tests/fakes/github.py``).

Conventions (GitHub REST docs, "Getting started with the REST API"; the OpenAPI description in
``@octokit/openapi`` 23.0.2, ``api.github.com.json``):

* every request sends ``Accept: application/vnd.github+json`` and ``X-GitHub-Api-Version: 2022-11-28``;
* lists are paginated with the ``Link`` header (``rel="next"``), at most 100 items a page;
* ``404`` is an answer ("there is none"): :meth:`GitHub.get` returns ``None``;
* any other error is an :class:`GitHubError` naming the method, URL and status;
* an artifact's ``/zip`` answers ``302`` to a short-lived storage URL, which is followed *without*
  the token (the token is for GitHub, not for the storage host).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from email.message import Message
from typing import Any

from infra.errors import InfraError

API_URL_ENV = "GITHUB_API_URL"
TOKEN_ENV = "GITHUB_TOKEN"
DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class GitHubError(InfraError):
    """A GitHub API call failed (not a 404): the URL and the status say which and why."""

    def __init__(self, method: str, url: str, status: int | None, message: str) -> None:
        self.method, self.url, self.status = method, url, status
        where = f"GitHub API {method} {url}"
        super().__init__(f"{where}: {status} {message}" if status is not None else f"{where}: {message}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by hand, so the token is never sent to the host redirected to."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def next_link(link_header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    match = _NEXT.search(link_header or "")
    return match.group(1) if match else None


class GitHub:
    """One repository's REST API (``owner/name``); methods return the decoded JSON."""

    def __init__(self, repository: str, *, token: str | None = None, api_url: str | None = None, timeout: float = 30.0) -> None:
        owner, sep, name = repository.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise InfraError(f"repository {repository!r}: write owner/name, e.g. acme-ml/ml-platform")
        self.repository = repository
        self.token = token
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    @classmethod
    def from_env(cls, repository: str, environ: Mapping[str, str] | None = None) -> GitHub:
        env = os.environ if environ is None else environ
        return cls(repository, token=env.get(TOKEN_ENV) or None, api_url=env.get(API_URL_ENV) or None)

    # --- transport -----------------------------------------------------------------------------

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """``path`` is absolute (``/repos/...``), relative to the repository (``pulls/1``), or a full URL."""
        if path.startswith(("http://", "https://")):
            base = path
        elif path.startswith("/"):
            base = self.api_url + path
        else:
            base = f"{self.api_url}/repos/{self.repository}/{path}"
        query = {k: ("true" if v is True else "false" if v is False else v) for k, v in (params or {}).items() if v is not None}
        if not query:
            return base
        return base + ("&" if "?" in base else "?") + urllib.parse.urlencode(query)

    def _request(
        self, method: str, url: str, body: Any = None, *, auth: bool = True, accept: str = ACCEPT
    ) -> tuple[int, Message[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", accept)
        request.add_header("X-GitHub-Api-Version", API_VERSION)
        request.add_header("User-Agent", "mlp-infra")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth and self.token:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(method, url, None, f"unreachable ({reason})") from None

    @staticmethod
    def _decode(raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw.decode(errors="replace")

    def _fail(self, method: str, url: str, status: int, raw: bytes) -> GitHubError:
        body = self._decode(raw)
        message = body.get("message", "") if isinstance(body, dict) else str(body or "")[:200]
        return GitHubError(method, url, status, message or "error")

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[Any, Message[str, str]] | None:
        """One request: the decoded body and headers; ``None`` on 404; :class:`GitHubError` otherwise."""
        url = self.url(path, params)
        status, headers, raw = self._request(method, url, body)
        if status == 404:
            return None
        if status >= 300:
            raise self._fail(method, url, status, raw)
        return self._decode(raw), headers

    def get(self, path: str, **params: Any) -> Any:
        answer = self.call("GET", path, **params)
        return None if answer is None else answer[0]

    def put(self, path: str, body: Any) -> Any:
        answer = self.call("PUT", path, body)
        if answer is None:
            raise GitHubError("PUT", self.url(path), 404, "Not Found")
        return answer[0]

    def pages(self, path: str, *, key: str | None = None, per_page: int = 100, **params: Any) -> Iterator[Any]:
        """Every item of a paginated list (``key``: the list's field in an object answer, such as
        ``workflow_runs``), following ``Link: <…>; rel="next"``; nothing on 404."""
        url: str | None = self.url(path, {"per_page": per_page, **params})
        while url:
            status, headers, raw = self._request("GET", url)
            if status == 404:
                return
            if status >= 300:
                raise self._fail("GET", url, status, raw)
            body = self._decode(raw)
            items = body.get(key, []) if key and isinstance(body, dict) else body
            yield from items or []
            url = next_link(headers.get("Link"))

    def download(self, path: str) -> bytes:
        """The bytes behind a redirecting download (an artifact's ``/zip``): the 302's ``Location``
        is fetched without the token. 410 (expired) and other errors raise :class:`GitHubError`."""
        url = self.url(path)
        status, headers, raw = self._request("GET", url, accept="application/vnd.github+json")
        if status in (301, 302, 303, 307, 308):
            location = headers.get("Location")
            if not location:
                raise GitHubError("GET", url, status, "redirect without a Location")
            status, _, raw = self._request("GET", urllib.parse.urljoin(url, location), auth=False, accept="*/*")
            url = location
        if status >= 300:
            raise self._fail("GET", url, status, raw)
        return raw

    # --- the endpoints the deploy gate and preflight read -----------------------------------------

    def pulls_for_commit(self, sha: str) -> list[dict[str, Any]]:
        """Pull requests associated with a commit (merged, or also open ones off the default branch)."""
        return list(self.pages(f"commits/{sha}/pulls"))

    def pull(self, number: int) -> dict[str, Any] | None:
        return self.get(f"pulls/{number}")  # type: ignore[no-any-return]

    def reviews(self, number: int) -> list[dict[str, Any]]:
        return list(self.pages(f"pulls/{number}/reviews"))

    def pull_files(self, number: int) -> list[dict[str, Any]]:
        return list(self.pages(f"pulls/{number}/files"))

    def git_commit(self, sha: str) -> dict[str, Any] | None:
        return self.get(f"git/commits/{sha}")  # type: ignore[no-any-return]

    def compare(self, base: str, head: str) -> dict[str, Any] | None:
        return self.get(f"compare/{base}...{head}")  # type: ignore[no-any-return]

    def workflow_runs(self, workflow: str | int, **filters: Any) -> list[dict[str, Any]]:
        """Runs of one workflow (file name or id); filters: event, head_sha, status, branch, actor, …"""
        return list(self.pages(f"actions/workflows/{workflow}/runs", key="workflow_runs", **filters))

    def run(self, run_id: int, attempt: int | None = None) -> dict[str, Any] | None:
        suffix = f"/attempts/{attempt}" if attempt is not None else ""
        return self.get(f"actions/runs/{run_id}{suffix}")  # type: ignore[no-any-return]

    def run_artifacts(self, run_id: int, name: str | None = None) -> list[dict[str, Any]]:
        return list(self.pages(f"actions/runs/{run_id}/artifacts", key="artifacts", name=name))

    def artifact_zip(self, artifact_id: int) -> bytes:
        return self.download(f"actions/artifacts/{artifact_id}/zip")

    def run_approvals(self, run_id: int) -> list[dict[str, Any]]:
        return self.get(f"actions/runs/{run_id}/approvals") or []

    def environment(self, name: str) -> dict[str, Any] | None:
        return self.get(f"environments/{urllib.parse.quote(name, safe='')}")  # type: ignore[no-any-return]

    def deployment_branch_policies(self, name: str) -> list[dict[str, Any]]:
        path = f"environments/{urllib.parse.quote(name, safe='')}/deployment-branch-policies"
        return list(self.pages(path, key="branch_policies"))

    def oidc_sub_customization(self) -> dict[str, Any] | None:
        return self.get("actions/oidc/customization/sub")  # type: ignore[no-any-return]

    def attestations(self, subject_digest: str, predicate_type: str | None = None) -> list[dict[str, Any]]:
        return list(self.pages(f"attestations/{subject_digest}", key="attestations", predicate_type=predicate_type))
