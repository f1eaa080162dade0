"""Finding the review a push deploys against, through the local fake GitHub API: the merged pull
request, the approval of its final head, that head's review run and the run's own artifact, checked
by digest. Each way to forge or misplace the evidence is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from infra.clouds.github import GitHub
from infra.deploy.provenance import NoReview, find_review, workflow_file
from tests.fakes.github import Artifact, Commit, GitHubState, PullRequest, Review, WorkflowRun, fake_github

REPO = "acme-ml/ml-platform"
HEAD, MERGE, BEFORE, OLD = "a" * 40, "b" * 40, "c" * 40, "d" * 40
REPORT = {"environments": [{"env": "staging", "synth_hash": "f" * 64, "changes": [], "plans": {}}]}


def _state() -> GitHubState:
    """PR #7 (head HEAD) squash-merged into staging as MERGE on top of BEFORE, approved at HEAD by
    alice, reviewed by review.yml run 100 which uploaded review-pr-7."""
    s = GitHubState(repository=REPO)
    s.pulls[7] = PullRequest(number=7, head_sha=HEAD, base_ref="staging", merged=True, merge_commit_sha=MERGE, user="bob")
    s.commit_pulls[MERGE] = [7]
    s.commits[BEFORE] = Commit(BEFORE, "t0")
    s.commits[MERGE] = Commit(MERGE, "t1", parents=[BEFORE])
    s.reviews[7] = [Review(1, "alice", "APPROVED", HEAD)]
    s.runs.append(WorkflowRun(id=100, workflow="review.yml", event="pull_request", head_sha=HEAD, head_branch="feature"))
    s.artifacts.append(Artifact(id=5, run_id=100, name="review-pr-7", files={"review.json": json.dumps(REPORT).encode()}))
    return s


@pytest.fixture
def github() -> Iterator[tuple[GitHubState, GitHub]]:
    state = _state()
    with fake_github(state) as url:
        yield state, GitHub(REPO, token=state.token, api_url=url)


def _find(gh: GitHub, **kw: object) -> tuple[object, dict]:  # type: ignore[type-arg]
    args: dict = {"sha": MERGE, "branch": "refs/heads/staging", "before": BEFORE, "requires_approval": True, **kw}  # type: ignore[type-arg]
    return find_review(gh, **args)


def test_the_merged_pull_requests_review_is_found_and_checked(github: tuple[GitHubState, GitHub]) -> None:
    state, gh = github
    evidence, report = _find(gh)
    assert report == REPORT
    assert evidence.to_dict() == {  # type: ignore[attr-defined]
        "repository": REPO, "sha": MERGE, "pull_request": 7, "head_sha": HEAD, "base_ref": "staging",
        "approved_by": ["alice"], "run_id": 100, "run_attempt": 1, "artifact_id": 5, "digest": state.artifacts[0].digest,
    }  # fmt: skip
    # the artifact was read through its run, never picked by name across the repository
    paths = [p for _, p, _ in state.requests]
    assert any("/actions/runs/100/artifacts" in p for p in paths)
    assert not any(p.split("?")[0].endswith("/actions/artifacts") for p in paths)


def test_a_direct_push_has_no_review(github: tuple[GitHubState, GitHub]) -> None:
    state, gh = github
    state.commit_pulls[MERGE] = []
    with pytest.raises(NoReview, match="not merged through a pull request"):
        _find(gh)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: setattr(s.pulls[7], "base_ref", "develop"), "merged into 'develop', not 'staging'"),
        (lambda s: setattr(s.pulls[7], "head_repository", "mallory/ml-platform"), "head is in mallory/ml-platform"),
        (lambda s: setattr(s.pulls[7], "merge_commit_sha", OLD), "not merged through a pull request"),
    ],
)
def test_a_pull_request_that_did_not_make_this_push_is_refused(github: tuple[GitHubState, GitHub], change, message: str) -> None:  # type: ignore[no-untyped-def]
    state, gh = github
    change(state)
    with pytest.raises(NoReview, match=message):
        _find(gh)


def test_a_push_that_brings_other_commits_is_refused(github: tuple[GitHubState, GitHub]) -> None:
    state, gh = github
    stranger = "e" * 40
    state.commits[stranger] = Commit(stranger, "t2", parents=[BEFORE])
    state.commits[MERGE] = Commit(MERGE, "t1", parents=[stranger])
    with pytest.raises(NoReview, match=r"not in pull request #7: eeeeeeeeeeee"):
        _find(gh)
    state.commit_pulls[stranger] = [7]  # a commit of the pull request itself (a merge commit's second parent)
    assert _find(gh)[0].pull_request == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "reviews",
    [
        [Review(1, "alice", "APPROVED", OLD)],  # approved before the last push
        [Review(1, "bob", "APPROVED", HEAD)],  # the author's own
        [Review(1, "alice", "APPROVED", HEAD), Review(2, "alice", "CHANGES_REQUESTED", HEAD)],  # withdrawn
        [Review(1, "alice", "APPROVED", HEAD), Review(2, "alice", "DISMISSED", HEAD)],  # dismissed
        [Review(1, "alice", "COMMENTED", HEAD)],
    ],
)
def test_the_approval_must_be_of_the_final_head_by_someone_else(github: tuple[GitHubState, GitHub], reviews: list[Review]) -> None:
    state, gh = github
    state.reviews[7] = reviews
    with pytest.raises(NoReview, match="no approval of its final head"):
        _find(gh)
    assert _find(gh, requires_approval=False)[0].approved_by == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "run",
    [
        WorkflowRun(id=100, workflow="other.yml", event="pull_request", head_sha=HEAD, head_branch="feature"),
        WorkflowRun(id=100, workflow="review.yml", event="push", head_sha=HEAD, head_branch="feature"),
        WorkflowRun(id=100, workflow="review.yml", event="pull_request", head_sha=OLD, head_branch="feature"),
        WorkflowRun(id=100, workflow="review.yml", event="pull_request", head_sha=HEAD, head_branch="feature", conclusion="failure"),
        WorkflowRun(id=100, workflow="review.yml", event="pull_request", head_sha=HEAD, head_branch="f", head_repository="mallory/x"),
    ],
    ids=["another-workflow", "not-a-pull-request-run", "another-head", "failed", "from-a-fork"],
)
def test_only_a_successful_review_run_of_that_head_counts(github: tuple[GitHubState, GitHub], run: WorkflowRun) -> None:
    state, gh = github
    state.runs = [run]
    with pytest.raises(NoReview, match=r"no successful review\.yml run"):
        _find(gh)


def test_an_artifact_of_the_same_name_from_another_run_is_not_taken(github: tuple[GitHubState, GitHub]) -> None:
    state, gh = github
    forged = {"environments": [{"env": "staging", "synth_hash": "0" * 64, "changes": []}]}
    state.runs.append(WorkflowRun(id=200, workflow="scratch.yml", event="push", head_sha=OLD, head_branch="x"))
    state.artifacts = [Artifact(id=9, run_id=200, name="review-pr-7", files={"review.json": json.dumps(forged).encode()})]
    with pytest.raises(NoReview, match="has 0 artifact"):
        _find(gh)
    state.artifacts.append(Artifact(id=5, run_id=100, name="review-pr-7", files={"review.json": json.dumps(REPORT).encode()}))
    assert _find(gh)[1] == REPORT


@pytest.mark.parametrize(
    ("artifact", "message"),
    [
        (Artifact(id=5, run_id=100, name="review-pr-7", files={"review.json": b"{}"}, recorded_digest="sha256:" + "0" * 64), "refused"),
        (Artifact(id=5, run_id=100, name="review-pr-7", files={"review.json": b"{}"}, expired=True), "expired"),
        (Artifact(id=5, run_id=100, name="review-pr-7", files={"plan.json": b"{}"}), "no readable review.json"),
        (Artifact(id=5, run_id=100, name="review-pr-7", files={"review.json": b"[1]"}), "no environments list"),
    ],
    ids=["bytes-differ-from-digest", "expired", "no-review-file", "not-a-report"],
)
def test_the_artifact_must_be_intact_and_a_review(github: tuple[GitHubState, GitHub], artifact: Artifact, message: str) -> None:
    state, gh = github
    state.artifacts = [artifact]
    with pytest.raises(NoReview, match=message):
        _find(gh)


def test_the_newest_attempt_of_the_review_run_is_taken(github: tuple[GitHubState, GitHub]) -> None:
    state, gh = github
    state.runs.append(WorkflowRun(id=101, workflow="review.yml", event="pull_request", head_sha=HEAD, head_branch="feature", run_attempt=2))
    state.artifacts.append(Artifact(id=6, run_id=101, name="review-pr-7", files={"review.json": json.dumps(REPORT).encode()}))
    evidence = _find(gh)[0]
    assert (evidence.run_id, evidence.run_attempt, evidence.artifact_id) == (101, 2, 6)  # type: ignore[attr-defined]


def test_another_pull_requests_review_is_never_taken(github: tuple[GitHubState, GitHub]) -> None:
    state, gh = github
    # the same head opened into develop as PR #8: its newer run reviewed #8, not #7, and is looked past
    state.runs.append(WorkflowRun(id=102, workflow="review.yml", event="pull_request", head_sha=HEAD, head_branch="feature",
                                  created_at="2026-11-30T12:00:00Z"))  # fmt: skip
    state.artifacts.append(Artifact(id=8, run_id=102, name="review-pr-8", files={"review.json": json.dumps(REPORT).encode()}))
    assert _find(gh)[0].run_id == 100  # type: ignore[attr-defined]
    # PR #9 (another head) uploads an artifact named for #7: its run is not a run of #7's head
    forged = {"environments": [{"env": "staging", "synth_hash": "0" * 64, "changes": []}]}
    state.runs.append(WorkflowRun(id=103, workflow="review.yml", event="pull_request", head_sha=OLD, head_branch="mallory"))
    state.artifacts.append(Artifact(id=9, run_id=103, name="review-pr-7", files={"review.json": json.dumps(forged).encode()}))
    state.artifacts = [a for a in state.artifacts if a.run_id != 100]
    with pytest.raises(NoReview, match="has 0 artifact"):
        _find(gh)


@pytest.mark.parametrize(
    "path",
    [
        ".github/workflows/review.yml",
        ".github/workflows/review.yml@refs/pull/7/merge",
        "acme-ml/ml-platform/.github/workflows/review.yml@main",
    ],
)
def test_a_runs_path_names_its_workflow_file_in_every_form_github_uses(path: str) -> None:
    assert workflow_file(path) == ".github/workflows/review.yml"


def test_promotion_evidence_comes_from_the_source_branchs_deploy_run(github: tuple[GitHubState, GitHub]) -> None:
    from infra.deploy.provenance import deploy_evidence

    state, gh = github
    real, forged = b'{"env": "staging", "passed": true}', b'{"env": "staging", "passed": true, "forged": true}'
    state.runs += [
        WorkflowRun(id=400, workflow="deploy.yml", event="push", head_sha=MERGE, head_branch="staging", created_at="2026-11-30T10:00:00Z"),
        # newer, but deployed nothing (no artifact): looked past
        WorkflowRun(id=401, workflow="deploy.yml", event="push", head_sha=OLD, head_branch="staging", created_at="2026-11-30T11:00:00Z"),
        # a pull request's run uploading an artifact of the same name: not a deploy
        WorkflowRun(
            id=402, workflow="review.yml", event="pull_request", head_sha=HEAD, head_branch="feature", created_at="2026-11-30T12:00:00Z"
        ),
        # a deploy.yml run of a push to another branch (its own copy of the workflow): not staging's
        WorkflowRun(id=403, workflow="deploy.yml", event="push", head_sha=OLD, head_branch="scratch", created_at="2026-11-30T13:00:00Z"),
    ]
    state.artifacts += [
        Artifact(id=40, run_id=400, name="deploy-staging", files={"smoke-staging.json": real}),
        Artifact(id=42, run_id=402, name="deploy-staging", files={"smoke-staging.json": forged}),
        Artifact(id=43, run_id=403, name="deploy-staging", files={"smoke-staging.json": forged}),
    ]
    run, body = deploy_evidence(gh, env="staging", branch="staging", member="smoke-staging.json")
    assert (run["id"], body) == (400, real)
    state.artifacts[-3].recorded_digest = "sha256:" + "0" * 64
    with pytest.raises(NoReview, match="do not match the digest"):
        deploy_evidence(gh, env="staging", branch="staging", member="smoke-staging.json")
    with pytest.raises(NoReview, match="dev has not been deployed yet"):
        deploy_evidence(gh, env="dev", branch="develop", member="smoke-dev.json")
