"""A local fake of the GitHub REST API, answering from seeded in-memory data.

Seed a :class:`GitHubState` with dataclasses, start the server with :func:`fake_github`, point
``GITHUB_API_URL`` at the URL it yields (and ``GITHUB_TOKEN`` at ``state.token``)::

    state = GitHubState(repository="acme-ml/ml-platform")
    state.pulls[7] = PullRequest(number=7, head_sha="a" * 40, base_ref="staging", merged=True,
                                 merge_commit_sha="b" * 40)
    state.commit_pulls["b" * 40] = [7]
    state.runs.append(WorkflowRun(id=100, workflow="review.yml", event="pull_request",
                                  head_sha="a" * 40, head_branch="feature"))
    state.artifacts.append(Artifact(id=5, run_id=100, name="review-pr-7", files={"review.json": b"{}"}))
    state.environments["production"] = Environment(name="production", reviewers=[("User", "alice")],
                                                   custom_branches=["main"])
    with fake_github(state) as url:
        ...

Endpoints (shapes from GitHub's OpenAPI description, ``@octokit/openapi`` 23.0.2,
``api.github.com.json``), all under ``/repos/{owner}/{repo}``:

===================================================  ==============================================
``GET commits/{sha}/pulls``                          ``state.commit_pulls[sha]`` → pull-request-simple
``GET pulls/{n}``                                    ``state.pulls[n]`` (``merged`` bool included)
``GET pulls/{n}/reviews``                            ``state.reviews[n]``
``GET pulls/{n}/files``                              ``state.files[n]``
``GET git/commits/{sha}``                            ``state.commits[sha]`` (tree, parents)
``GET compare/{base}...{head}``                      commits reachable from head and not from base
``GET actions/workflows/{file|id}/runs``             ``state.runs``; filters event, head_sha, status
                                                     (status or conclusion), branch, actor,
                                                     exclude_pull_requests
``GET actions/runs/{id}[/attempts/{n}]``             one run (an attempt: the run with that number)
``GET actions/runs/{id}/artifacts``                  ``state.artifacts`` of the run; ``name`` filter;
                                                     ``digest`` = ``sha256:`` of the zip
``GET actions/artifacts/{id}/zip``                   302 to ``/_blob/artifacts/{id}`` on this server
                                                     (410 when expired); the blob refuses a request
                                                     that carries ``Authorization``
``GET actions/runs/{id}/approvals``                  ``state.approvals[id]``
``GET environments/{env}``                           ``state.environments[env]`` (404 when absent)
``GET environments/{env}/deployment-branch-policies``  its custom branch policies
``GET|PUT actions/oidc/customization/sub``           ``state.oidc_sub``
``GET attestations/{sha256:hex}``                    ``state.attestations[digest]``; predicate_type
===================================================  ==============================================

Lists honour ``per_page`` (default 30, at most 100) and ``page`` and answer with a ``Link`` header
(``rel="next"``, ``rel="last"``). With ``state.token`` set, a request without
``Authorization: Bearer <token>`` (or ``token <token>``) gets 401 ``Bad credentials``.
``state.requests`` records every (method, path, headers with lower-case names) for assertions.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.servers import http_server

NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}
STAMP = "2026-12-01T12:00:00Z"


@dataclass
class PullRequest:
    number: int
    head_sha: str
    base_ref: str
    head_ref: str = "feature"
    merged: bool = False
    merge_commit_sha: str | None = None
    merged_at: str | None = None
    user: str = "author"
    state: str = "open"
    base_sha: str = ""
    head_repository: str | None = None  # default: the repository itself (not a fork)
    draft: bool = False


@dataclass
class Review:
    id: int
    user: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    commit_id: str | None
    submitted_at: str = STAMP


@dataclass
class PullFile:
    filename: str
    status: str = "modified"  # added, removed, modified, renamed, copied, changed, unchanged
    previous_filename: str | None = None
    sha: str = "0" * 40


@dataclass
class Commit:
    sha: str
    tree: str
    parents: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class WorkflowRun:
    id: int
    workflow: str  # the file name, e.g. review.yml
    event: str
    head_sha: str
    head_branch: str
    status: str = "completed"
    conclusion: str | None = "success"
    run_attempt: int = 1
    path: str | None = None  # default .github/workflows/<workflow>
    head_repository: str | None = None  # default: the repository
    actor: str = "author"
    pull_requests: list[int] = field(default_factory=list)
    created_at: str = STAMP
    workflow_id: int = 0  # default: derived from the file name


@dataclass
class Artifact:
    id: int
    run_id: int
    name: str
    files: dict[str, bytes] = field(default_factory=dict)  # zipped on demand
    expired: bool = False
    recorded_digest: str | None = None  # what GitHub recorded at upload (default: the zip's); set it to serve bytes that differ

    @property
    def archive(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content in sorted(self.files.items()):
                archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 12, 1, 0, 0, 0)), content)
        return buffer.getvalue()

    @property
    def digest(self) -> str:
        return self.recorded_digest or "sha256:" + hashlib.sha256(self.archive).hexdigest()


@dataclass
class Approval:
    state: str  # approved, rejected
    user: str
    environments: list[str]
    comment: str = ""


@dataclass
class Environment:
    name: str
    reviewers: list[tuple[str, str]] = field(default_factory=list)  # (User|Team, login or slug)
    prevent_self_review: bool = False
    wait_timer: int = 0
    protected_branches: bool = False
    custom_branches: list[str] | None = None  # None: no custom policy (all branches unless protected_branches)
    custom_tags: list[str] = field(default_factory=list)


@dataclass
class Attestation:
    bundle: dict[str, Any] | None = None
    bundle_url: str | None = None
    repository_id: int = 1
    predicate_type: str = "https://slsa.dev/provenance/v1"
    initiator: str = "user"


@dataclass
class GitHubState:
    repository: str = "acme-ml/ml-platform"
    repository_id: int = 1
    token: str | None = "fake-token"
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    reviews: dict[int, list[Review]] = field(default_factory=dict)
    files: dict[int, list[PullFile]] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    commit_pulls: dict[str, list[int]] = field(default_factory=dict)
    runs: list[WorkflowRun] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    approvals: dict[int, list[Approval]] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    # None: the endpoint answers 404, as it does to a token without Administration (read)
    oidc_sub: dict[str, Any] | None = field(default_factory=lambda: {"use_default": True})
    attestations: dict[str, list[Attestation]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def reset(self) -> None:
        """Back to an empty seed (a server started once for a module serves one state object)."""
        self.__init__()  # type: ignore[misc]


# --- JSON shapes -----------------------------------------------------------------------------------


def _repo(state: GitHubState, full_name: str | None = None) -> dict[str, Any]:
    name = full_name or state.repository
    rid = state.repository_id if name == state.repository else state.repository_id + 1000
    return {"id": rid, "name": name.split("/")[1], "full_name": name, "owner": {"login": name.split("/")[0]}}


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 100000, "type": "User"}


def _pull(state: GitHubState, pr: PullRequest, *, simple: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number": pr.number,
        "state": "closed" if pr.merged else pr.state,
        "merged_at": pr.merged_at or (STAMP if pr.merged else None),
        "merge_commit_sha": pr.merge_commit_sha,
        "draft": pr.draft,
        "user": _user(pr.user),
        "base": {"ref": pr.base_ref, "sha": pr.base_sha, "repo": _repo(state), "label": f"{state.repository.split('/')[0]}:{pr.base_ref}"},
        "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": _repo(state, pr.head_repository), "label": pr.head_ref},
        "html_url": f"https://github.com/{state.repository}/pull/{pr.number}",
    }
    if not simple:
        body["merged"] = pr.merged
        body["merged_by"] = _user("merger") if pr.merged else None
    return body


def _workflow_id(run: WorkflowRun) -> int:
    return run.workflow_id or int(hashlib.sha256(run.workflow.encode()).hexdigest()[:6], 16)


def _run(state: GitHubState, run: WorkflowRun, base: str) -> dict[str, Any]:
    prs = []
    for n in run.pull_requests:
        pr = state.pulls.get(n)
        if pr:
            prs.append(
                {"id": n, "number": n, "head": {"ref": pr.head_ref, "sha": pr.head_sha}, "base": {"ref": pr.base_ref, "sha": pr.base_sha}}
            )
    return {
        "id": run.id,
        "name": run.workflow.rsplit(".", 1)[0],
        "path": run.path or f".github/workflows/{run.workflow}",
        "workflow_id": _workflow_id(run),
        "event": run.event,
        "status": run.status,
        "conclusion": run.conclusion,
        "head_sha": run.head_sha,
        "head_branch": run.head_branch,
        "run_attempt": run.run_attempt,
        "run_number": run.id,
        "actor": _user(run.actor),
        "triggering_actor": _user(run.actor),
        "repository": _repo(state),
        "head_repository": _repo(state, run.head_repository),
        "pull_requests": prs,
        "created_at": run.created_at,
        "updated_at": run.created_at,
        "html_url": f"https://github.com/{state.repository}/actions/runs/{run.id}",
        "artifacts_url": f"{base}/repos/{state.repository}/actions/runs/{run.id}/artifacts",
    }


def _artifact(state: GitHubState, artifact: Artifact, base: str) -> dict[str, Any]:
    run = next((r for r in state.runs if r.id == artifact.run_id), None)
    return {
        "id": artifact.id,
        "node_id": f"A_{artifact.id}",
        "name": artifact.name,
        "size_in_bytes": len(artifact.archive),
        "url": f"{base}/repos/{state.repository}/actions/artifacts/{artifact.id}",
        "archive_download_url": f"{base}/repos/{state.repository}/actions/artifacts/{artifact.id}/zip",
        "expired": artifact.expired,
        "created_at": STAMP,
        "updated_at": STAMP,
        "expires_at": "2027-03-01T12:00:00Z",
        "digest": artifact.digest,
        "workflow_run": {
            "id": artifact.run_id,
            "repository_id": state.repository_id,
            "head_repository_id": _repo(state, run.head_repository if run else None)["id"],
            "head_branch": run.head_branch if run else None,
            "head_sha": run.head_sha if run else None,
        },
    }


def _environment(state: GitHubState, env: Environment) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    rid = 3000
    if env.wait_timer:
        rules.append({"id": rid, "node_id": f"GA_{rid}", "type": "wait_timer", "wait_timer": env.wait_timer})
    if env.reviewers:
        reviewers = [
            {"type": kind, "reviewer": _user(name) if kind == "User" else {"id": abs(hash(name)) % 1000, "slug": name, "name": name}}
            for kind, name in env.reviewers
        ]
        rules.append(
            {"id": rid + 1, "node_id": f"GA_{rid + 1}", "type": "required_reviewers", "prevent_self_review": env.prevent_self_review,
             "reviewers": reviewers}
        )  # fmt: skip
    policy = None
    if env.protected_branches or env.custom_branches is not None:
        policy = {"protected_branches": env.protected_branches, "custom_branch_policies": env.custom_branches is not None}
        rules.append({"id": rid + 2, "node_id": f"GA_{rid + 2}", "type": "branch_policy"})
    return {
        "id": abs(hash(env.name)) % 10**8,
        "node_id": f"EN_{env.name}",
        "name": env.name,
        "url": f"https://api.github.com/repos/{state.repository}/environments/{env.name}",
        "html_url": f"https://github.com/{state.repository}/deployments/activity_log?environments_filter={env.name}",
        "created_at": STAMP,
        "updated_at": STAMP,
        "protection_rules": rules,
        "deployment_branch_policy": policy,
    }


def _reachable(state: GitHubState, start: str) -> list[str]:
    seen: list[str] = []
    todo = [start]
    while todo:
        sha = todo.pop(0)
        if sha in seen:
            continue
        seen.append(sha)
        commit = state.commits.get(sha)
        todo += commit.parents if commit else []
    return seen


# --- the server --------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    state: GitHubState

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/zip" if isinstance(body, bytes) else "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _page(self, items: list[Any], query: dict[str, str], key: str | None = None, total: bool = True) -> None:
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        links = []
        path = self.path.split("?")[0]
        if page < last:
            links.append(f'<{self.base}{path}?{urllib.parse.urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.base}{path}?{urllib.parse.urlencode({**query, "page": last})}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        if key is None:
            self._send(200, chunk, headers)
        else:
            self._send(200, {**({"total_count": len(items)} if total else {}), key: chunk}, headers)

    def _authorized(self) -> bool:
        token = self.state.token
        if token is None:
            return True
        return self.headers.get("Authorization") in (f"Bearer {token}", f"token {token}")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        path = urllib.parse.unquote(parsed.path)
        self.state.requests.append((method, parsed.path, {k.lower(): v for k, v in self.headers.items()}))
        if path.startswith("/_blob/artifacts/"):
            # a storage URL: signed by its query, and it refuses a second credential (as blob storage does)
            if "Authorization" in self.headers:
                self._send(400, {"message": "the blob URL is signed; do not send Authorization"})
                return
            artifact = next((a for a in self.state.artifacts if str(a.id) == path.rsplit("/", 1)[1]), None)
            self._send(200, artifact.archive) if artifact else self._send(404, NOT_FOUND)
            return
        if not self._authorized():
            self._send(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
            return
        prefix = f"/repos/{self.state.repository}/"
        if not path.startswith(prefix):
            self._send(404, NOT_FOUND)
            return
        parts = path[len(prefix) :].strip("/").split("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if method == "PUT" and length else None
        try:
            answered = self._route(method, parts, query, body)
        except (KeyError, ValueError, StopIteration):
            answered = False
        if not answered:
            self._send(404, NOT_FOUND)

    def _route(self, method: str, parts: list[str], query: dict[str, str], body: Any) -> bool:
        s = self.state
        match parts:
            case ["commits", sha, "pulls"]:
                self._page([_pull(s, s.pulls[n], simple=True) for n in s.commit_pulls.get(sha, [])], query)
            case ["pulls", n]:
                self._send(200, _pull(s, s.pulls[int(n)], simple=False))
            case ["pulls", n, "reviews"] if int(n) in s.pulls:
                reviews = [
                    {"id": r.id, "user": _user(r.user), "state": r.state, "commit_id": r.commit_id, "submitted_at": r.submitted_at,
                     "author_association": "MEMBER", "body": ""}
                    for r in s.reviews.get(int(n), [])
                ]  # fmt: skip
                self._page(reviews, query)
            case ["pulls", n, "files"] if int(n) in s.pulls:
                files = [
                    {"filename": f.filename, "status": f.status, "previous_filename": f.previous_filename, "sha": f.sha}
                    for f in s.files.get(int(n), [])
                ]
                self._page(files, query)
            case ["git", "commits", sha]:
                c = s.commits[sha]
                self._send(200, {"sha": c.sha, "tree": {"sha": c.tree}, "parents": [{"sha": p} for p in c.parents], "message": c.message})
            case ["compare", spec]:
                base, sep, head = spec.partition("...")
                if not sep or head not in s.commits or base not in s.commits:
                    return False
                behind = set(_reachable(s, base))
                ahead = [sha for sha in reversed(_reachable(s, head)) if sha not in behind]
                commits = [{"sha": sha, "commit": {"message": s.commits[sha].message}} for sha in ahead]
                self._send(
                    200,
                    {"status": "ahead" if ahead else "identical", "ahead_by": len(ahead), "behind_by": 0, "total_commits": len(ahead),
                     "base_commit": {"sha": base}, "merge_base_commit": {"sha": base}, "commits": commits},
                )  # fmt: skip
            case ["actions", "workflows", workflow, "runs"]:
                runs = [r for r in s.runs if workflow in (r.workflow, str(_workflow_id(r)))]
                if "event" in query:
                    runs = [r for r in runs if r.event == query["event"]]
                if "head_sha" in query:
                    runs = [r for r in runs if r.head_sha == query["head_sha"]]
                if "branch" in query:
                    runs = [r for r in runs if r.head_branch == query["branch"]]
                if "actor" in query:
                    runs = [r for r in runs if r.actor == query["actor"]]
                if "status" in query:
                    runs = [r for r in runs if query["status"] in (r.status, r.conclusion)]
                shaped = [_run(s, r, self.base) for r in sorted(runs, key=lambda r: -r.id)]
                if query.get("exclude_pull_requests") == "true":
                    for run in shaped:
                        run["pull_requests"] = []
                self._page(shaped, query, key="workflow_runs")
            case ["actions", "runs", rid]:
                self._send(200, _run(s, next(r for r in s.runs if r.id == int(rid)), self.base))
            case ["actions", "runs", rid, "attempts", attempt]:
                run = next(r for r in s.runs if r.id == int(rid))
                if int(attempt) > run.run_attempt or int(attempt) < 1:
                    return False
                self._send(200, {**_run(s, run, self.base), "run_attempt": int(attempt)})
            case ["actions", "runs", rid, "artifacts"] if any(r.id == int(rid) for r in s.runs):
                found = [a for a in s.artifacts if a.run_id == int(rid) and query.get("name") in (None, a.name)]
                if query.get("direction") == "asc":
                    found.sort(key=lambda a: a.id)
                else:
                    found.sort(key=lambda a: -a.id)
                self._page([_artifact(s, a, self.base) for a in found], query, key="artifacts")
            case ["actions", "artifacts", aid]:
                self._send(200, _artifact(s, next(a for a in s.artifacts if a.id == int(aid)), self.base))
            case ["actions", "artifacts", aid, "zip"]:
                artifact = next(a for a in s.artifacts if a.id == int(aid))
                if artifact.expired:
                    self._send(410, {"message": "Artifact has expired", "status": "410"})
                else:
                    self._send(302, None, {"Location": f"{self.base}/_blob/artifacts/{artifact.id}?sig=fake"})
            case ["actions", "runs", rid, "approvals"]:
                approvals = [
                    {"state": a.state, "comment": a.comment, "user": _user(a.user),
                     "environments": [{"id": abs(hash(e)) % 10**8, "name": e} for e in a.environments]}
                    for a in s.approvals.get(int(rid), [])
                ]  # fmt: skip
                self._send(200, approvals)
            case ["environments", name]:
                self._send(200, _environment(s, s.environments[name]))
            case ["environments", name, "deployment-branch-policies"]:
                env = s.environments[name]
                policies = [
                    {"id": 361000 + i, "node_id": f"BP_{i}", "name": b, "type": "branch"} for i, b in enumerate(env.custom_branches or [])
                ]
                policies += [{"id": 362000 + i, "node_id": f"TP_{i}", "name": t, "type": "tag"} for i, t in enumerate(env.custom_tags)]
                self._page(policies, query, key="branch_policies")
            case ["actions", "oidc", "customization", "sub"]:
                if method == "PUT":
                    if not isinstance(body, dict) or "use_default" not in body:
                        self._send(422, {"message": "use_default is required"})
                        return True
                    s.oidc_sub = {k: v for k, v in body.items() if k in ("use_default", "include_claim_keys", "use_immutable_subject")}
                    self._send(201, {})
                elif s.oidc_sub is None:
                    return False
                else:
                    owner, repo = s.repository.split("/")
                    self._send(200, {"include_claim_keys": [], **s.oidc_sub, "sub_claim_prefix": f"repo:{owner}/{repo}"})
            case ["attestations", digest]:
                found = [a for a in s.attestations.get(digest, []) if query.get("predicate_type") in (None, a.predicate_type)]
                if not found:
                    return False
                shaped = [
                    {**({"bundle": a.bundle} if a.bundle is not None else {}), "bundle_url": a.bundle_url,
                     "repository_id": a.repository_id, "initiator": a.initiator}
                    for a in found
                ]  # fmt: skip
                self._page(shaped, query, key="attestations", total=False)
            case _:
                return False
        return True


@contextmanager
def fake_github(state: GitHubState) -> Iterator[str]:
    """Serve ``state`` on 127.0.0.1; yields the API base URL (for ``GITHUB_API_URL``)."""
    handler = type("GitHubHandler", (_Handler,), {"state": state})
    with http_server(handler) as url:
        yield url
