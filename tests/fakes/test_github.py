"""``infra.clouds.github`` against the local fake GitHub API: headers, pagination through ``Link``,
404 as ``None``, errors naming the URL and status, the artifact download that follows the 302
without the token, and every endpoint the fake serves."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator

import pytest

from infra.clouds.github import API_VERSION, GitHub, GitHubError, next_link
from tests.fakes.github import (
    Approval,
    Artifact,
    Attestation,
    Commit,
    Environment,
    GitHubState,
    PullFile,
    PullRequest,
    Review,
    WorkflowRun,
    fake_github,
)

HEAD, MERGE, BASE = "a" * 40, "b" * 40, "c" * 40


def seeded() -> GitHubState:
    state = GitHubState()
    state.pulls[7] = PullRequest(number=7, head_sha=HEAD, base_ref="staging", merged=True, merge_commit_sha=MERGE, base_sha=BASE)
    state.pulls[8] = PullRequest(number=8, head_sha="d" * 40, base_ref="staging")
    state.commit_pulls[MERGE] = [7]
    state.reviews[7] = [Review(id=1, user="bob", state="APPROVED", commit_id=HEAD)]
    state.files[7] = [PullFile(f"f{i}.py") for i in range(150)]
    state.commits[BASE] = Commit(BASE, tree="t0")
    state.commits[HEAD] = Commit(HEAD, tree="t1", parents=[BASE], message="change")
    state.commits[MERGE] = Commit(MERGE, tree="t1", parents=[BASE, HEAD], message="merge")
    state.runs += [
        WorkflowRun(id=100, workflow="review.yml", event="pull_request", head_sha=HEAD, head_branch="feature", pull_requests=[7]),
        WorkflowRun(id=101, workflow="review.yml", event="pull_request", head_sha=HEAD, head_branch="feature", conclusion="failure"),
        WorkflowRun(
            id=102, workflow="deploy.yml", event="push", head_sha=MERGE, head_branch="staging", status="in_progress", conclusion=None
        ),
    ]
    state.artifacts += [
        Artifact(id=5, run_id=100, name="review-pr-7", files={"review.json": b'{"ok": true}'}),
        Artifact(id=6, run_id=100, name="other", files={"x": b"y"}),
        Artifact(id=9, run_id=101, name="review-pr-7", files={}, expired=True),
    ]
    state.approvals[102] = [Approval(state="approved", user="carol", environments=["staging"])]
    state.environments["production"] = Environment(
        name="production", reviewers=[("User", "alice"), ("Team", "platform")], prevent_self_review=True, custom_branches=["main"]
    )
    state.attestations["sha256:" + "e" * 64] = [Attestation(bundle={"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"})]
    return state


@pytest.fixture
def api() -> Iterator[tuple[GitHub, GitHubState]]:
    state = seeded()
    with fake_github(state) as url:
        yield GitHub("acme-ml/ml-platform", token=state.token, api_url=url), state


def test_headers_and_not_found(api: tuple[GitHub, GitHubState]) -> None:
    gh, state = api
    assert gh.pull(404) is None and gh.environment("nowhere") is None and gh.git_commit("f" * 40) is None
    _, _, headers = state.requests[-1]
    assert headers["accept"] == "application/vnd.github+json" and headers["x-github-api-version"] == API_VERSION
    assert headers["authorization"] == "Bearer fake-token"


def test_errors_name_the_url_and_the_status(api: tuple[GitHub, GitHubState]) -> None:
    gh, _ = api
    bad = GitHub("acme-ml/ml-platform", token="wrong", api_url=gh.api_url)
    with pytest.raises(GitHubError, match=r"GET http://127\.0\.0\.1:\d+/repos/acme-ml/ml-platform/pulls/7: 401 Bad credentials") as exc:
        bad.pull(7)
    assert exc.value.status == 401
    with pytest.raises(GitHubError, match="unreachable"):
        GitHub("acme-ml/ml-platform", api_url="http://127.0.0.1:9").pull(7)
    with pytest.raises(GitHubError, match="410 Artifact has expired"):
        gh.artifact_zip(9)


def test_pagination_follows_link(api: tuple[GitHub, GitHubState]) -> None:
    gh, state = api
    files = gh.pull_files(7)
    assert [f["filename"] for f in files] == [f"f{i}.py" for i in range(150)]
    assert sum(1 for m, p, _ in state.requests if p.endswith("/pulls/7/files")) == 2  # 100 + 50
    small = list(gh.pages("pulls/7/files", per_page=40))
    assert len(small) == 150
    assert next_link('<https://x/a?page=2>; rel="next", <https://x/a?page=4>; rel="last"') == "https://x/a?page=2"
    assert next_link(None) is None


def test_pull_request_endpoints(api: tuple[GitHub, GitHubState]) -> None:
    gh, _ = api
    (merged,) = gh.pulls_for_commit(MERGE)
    assert merged["number"] == 7 and merged["merge_commit_sha"] == MERGE and merged["head"]["repo"]["full_name"] == "acme-ml/ml-platform"
    assert "merged" not in merged  # pull-request-simple has no `merged` boolean
    pr = gh.pull(7)
    assert pr and pr["merged"] is True and pr["base"]["ref"] == "staging"
    assert [(r["user"]["login"], r["state"], r["commit_id"]) for r in gh.reviews(7)] == [("bob", "APPROVED", HEAD)]
    assert gh.git_commit(MERGE) == {"sha": MERGE, "tree": {"sha": "t1"}, "parents": [{"sha": BASE}, {"sha": HEAD}], "message": "merge"}
    compare = gh.compare(BASE, MERGE)
    assert compare and [c["sha"] for c in compare["commits"]] == [HEAD, MERGE] and compare["merge_base_commit"]["sha"] == BASE


def test_runs_artifacts_and_the_redirecting_download(api: tuple[GitHub, GitHubState]) -> None:
    gh, state = api
    runs = gh.workflow_runs("review.yml", event="pull_request", head_sha=HEAD, status="success")
    assert [r["id"] for r in runs] == [100] and runs[0]["path"] == ".github/workflows/review.yml"
    assert runs[0]["pull_requests"][0]["number"] == 7
    assert gh.workflow_runs("review.yml", exclude_pull_requests=True)[0]["pull_requests"] == []
    assert [r["id"] for r in gh.workflow_runs("deploy.yml", branch="staging", status="in_progress")] == [102]
    assert gh.run(100)["head_sha"] == HEAD  # type: ignore[index]
    assert gh.run(100, attempt=1)["run_attempt"] == 1 and gh.run(100, attempt=2) is None  # type: ignore[index]
    (artifact,) = gh.run_artifacts(100, name="review-pr-7")
    assert artifact["workflow_run"]["id"] == 100 and artifact["workflow_run"]["head_sha"] == HEAD
    archive = gh.artifact_zip(artifact["id"])
    assert artifact["digest"] == "sha256:" + hashlib.sha256(archive).hexdigest()
    assert zipfile.ZipFile(io.BytesIO(archive)).read("review.json") == b'{"ok": true}'
    blob = [h for m, p, h in state.requests if p.startswith("/_blob/")]
    assert blob and "authorization" not in blob[0]  # the token stays with GitHub
    assert len(gh.run_artifacts(100)) == 2
    assert [(a["user"]["login"], a["environments"][0]["name"]) for a in gh.run_approvals(102)] == [("carol", "staging")]


def test_environments_oidc_and_attestations(api: tuple[GitHub, GitHubState]) -> None:
    gh, _ = api
    env = gh.environment("production")
    assert env and env["deployment_branch_policy"] == {"protected_branches": False, "custom_branch_policies": True}
    rule = next(r for r in env["protection_rules"] if r["type"] == "required_reviewers")
    assert rule["prevent_self_review"] is True and [r["type"] for r in rule["reviewers"]] == ["User", "Team"]
    assert [p["name"] for p in gh.deployment_branch_policies("production")] == ["main"]
    assert gh.oidc_sub_customization() == {"use_default": True, "include_claim_keys": [], "sub_claim_prefix": "repo:acme-ml/ml-platform"}
    gh.put("actions/oidc/customization/sub", {"use_default": False, "include_claim_keys": ["repo", "context", "job_workflow_ref"]})
    assert gh.oidc_sub_customization()["include_claim_keys"] == ["repo", "context", "job_workflow_ref"]  # type: ignore[index]
    (attestation,) = gh.attestations("sha256:" + "e" * 64, predicate_type="https://slsa.dev/provenance/v1")
    assert attestation["bundle"]["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
    assert gh.attestations("sha256:" + "0" * 64) == []


def test_from_env_and_bad_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    gh = GitHub.from_env("o/r", {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "http://127.0.0.1:1/"})
    assert gh.token == "t" and gh.api_url == "http://127.0.0.1:1" and gh.url("pulls/1") == "http://127.0.0.1:1/repos/o/r/pulls/1"
    assert GitHub.from_env("o/r", {}).api_url == "https://api.github.com"
    from infra.errors import InfraError

    with pytest.raises(InfraError, match="owner/name"):
        GitHub("nope")
