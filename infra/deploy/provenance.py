"""Which review a push deploys against, found through GitHub's API and never by an artifact's name.

A push to an environment's branch deploys only what a pull request merged. The deploy job, running
the merged code in ``push`` context, asks GitHub (not the pull request's own output):

1. the merged pull request: ``GET commits/{sha}/pulls``, then ``GET pulls/{n}``: ``merged``,
   ``merge_commit_sha == sha``, ``base.ref == branch``, the head in this repository (a fork's head
   is refused), and, with the push's ``before``, every commit the push brought in belongs to that
   pull request (``GET compare/{before}...{sha}``; a direct push or a batched push would otherwise
   deploy another change under this review);
2. the approval, when the environment requires one: the latest review of some user other than the
   author is ``APPROVED`` at the pull request's final head (``commit_id == head.sha``), so a commit
   pushed after the approval is not covered;
3. the review run: ``GET actions/workflows/review.yml/runs?event=pull_request&head_sha=<head>``, a
   successful run of that file, at that head, from this repository (the newest attempt);
4. its artifact ``review-pr-<n>``: listed under *that run* (``GET actions/runs/{id}/artifacts``),
   not expired, ``workflow_run.id`` and ``head_sha`` matching, and the zip's SHA-256 equal to the
   ``digest`` GitHub recorded at upload.

Sources: GitHub REST OpenAPI description (``@octokit/openapi`` 23.0.2): ``pulls/get``
(``merge_commit_sha`` after a merge, squash or rebase is the commit the base branch moved to),
``repos/list-pull-requests-associated-with-commit``, ``pulls/list-reviews`` (``commit_id``),
``actions/list-workflow-runs`` (``head_sha``, ``event``, ``status`` filters; ``path``),
``actions/list-workflow-run-artifacts`` (``digest`` = ``sha256:<hex>``, upload-artifact v4+).

What this proves is *identity*: the artifact is the one the review run of the approved head
uploaded. It does not make the review's content trustworthy: a pull request's run executes the pull
request's code and its own copy of review.yml. So the review can only *stop* a deploy (the trusted
plan made after the merge must match it value by value); it never authorises a change by itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import asdict, dataclass
from typing import Any

from infra.clouds.github import GitHub
from infra.errors import EXIT_NEEDS_APPROVAL, InfraError

REVIEW_WORKFLOW = "review.yml"
REVIEW_FILE = "review.json"
MAX_REVIEW_BYTES = 20 * 1024 * 1024


class NoReview(InfraError):
    """No review that this push may be deployed against: nothing is planned or applied."""

    exit_code = EXIT_NEEDS_APPROVAL


@dataclass(frozen=True)
class Evidence:
    """The merged pull request, its approval and the review run's artifact, as GitHub reports them."""

    repository: str
    sha: str
    pull_request: int
    head_sha: str
    base_ref: str
    approved_by: tuple[str, ...]
    run_id: int
    run_attempt: int
    artifact_id: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["approved_by"] = list(self.approved_by)
        return data


def artifact_name(pull_request: int) -> str:
    return f"review-pr-{pull_request}"


def workflow_file(path: str) -> str:
    """``.github/workflows/review.yml`` from a run's ``path``, which may carry an ``owner/repo/``
    prefix and an ``@ref`` suffix (both forms appear in GitHub's examples)."""
    path = path.split("@", 1)[0]
    marker = ".github/workflows/"
    return path[path.find(marker) :] if marker in path else path


def merged_pull(gh: GitHub, sha: str, branch: str) -> dict[str, Any]:
    candidates = [p for p in gh.pulls_for_commit(sha) if p.get("merged_at") and p.get("merge_commit_sha") == sha]
    if not candidates:
        raise NoReview(
            f"{sha[:12]} on {branch} was not merged through a pull request (pushed directly?): nothing reviewed to deploy. "
            "Open a pull request into the branch; a break-glass change goes through docs/security.md#break-glass"
        )
    if len(candidates) > 1:
        numbers = ", ".join(f"#{p['number']}" for p in candidates)
        raise NoReview(f"{sha[:12]} is the merge commit of several pull requests ({numbers}): deploy one reviewed change at a time")
    number = int(candidates[0]["number"])
    pr = gh.pull(number)
    if pr is None:
        raise NoReview(f"pull request #{number} of {sha[:12]} is not readable: check the token's pull-requests: read")
    problems = []
    if not pr.get("merged"):
        problems.append("it is not merged")
    if pr.get("merge_commit_sha") != sha:
        problems.append(f"its merge commit is {str(pr.get('merge_commit_sha'))[:12]}, not {sha[:12]}")
    if (pr.get("base") or {}).get("ref") != branch:
        problems.append(f"it merged into {(pr.get('base') or {}).get('ref')!r}, not {branch!r}")
    head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    if head_repo != gh.repository:
        problems.append(
            f"its head is in {head_repo or 'a deleted fork'}, not {gh.repository}: a fork's change is reviewed again from a branch here"
        )
    if problems:
        raise NoReview(f"pull request #{number} cannot be deployed from {branch}: " + "; ".join(problems))
    return pr


def push_is_the_merge(gh: GitHub, pr: dict[str, Any], before: str, sha: str) -> None:
    """Every commit between ``before`` and ``sha`` belongs to the pull request."""
    if not before or set(before) == {"0"}:
        return  # a new branch: GitHub sends before = 000…0; the merge check above stands alone
    compared = gh.compare(before, sha)
    if compared is None:
        raise NoReview(f"cannot compare {before[:12]}...{sha[:12]}: the push's previous head is gone (force-push?)")
    number = pr["number"]
    strangers = []
    for commit in compared.get("commits") or []:
        csha = commit.get("sha", "")
        if csha == sha:
            continue
        if not any(p.get("number") == number for p in gh.pulls_for_commit(csha)):
            strangers.append(csha[:12])
    if strangers:
        raise NoReview(
            f"the push {before[:12]}...{sha[:12]} brought in commits that are not in pull request #{number}: "
            + ", ".join(strangers)
            + ". Each reviewed change is deployed on its own push"
        )


def approvers(gh: GitHub, pr: dict[str, Any]) -> tuple[str, ...]:
    """Users other than the author whose latest review is an approval of the final head."""
    author = (pr.get("user") or {}).get("login")
    head = (pr.get("head") or {}).get("sha")
    latest: dict[str, dict[str, Any]] = {}
    for review in gh.reviews(int(pr["number"])):  # chronological
        login = (review.get("user") or {}).get("login")
        if login and review.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[login] = review
    return tuple(
        sorted(login for login, r in latest.items() if login != author and r.get("state") == "APPROVED" and r.get("commit_id") == head)
    )


def _successful_runs(gh: GitHub, workflow: str, event: str, **match: str) -> list[dict[str, Any]]:
    """Successful runs of ``workflow`` (this repository's file at that path) for ``event`` whose
    fields equal ``match`` (``head_sha`` or ``head_branch``): the API's filters, checked again on
    each run it returns."""
    wanted = f".github/workflows/{workflow}"
    query = {"head_sha": match["head_sha"]} if "head_sha" in match else {"branch": match["head_branch"]}
    return [
        r
        for r in gh.workflow_runs(workflow, event=event, status="success", **query)
        if r.get("event") == event
        and all(r.get(k) == v for k, v in match.items())
        and r.get("conclusion") == "success"
        and workflow_file(str(r.get("path", ""))) == wanted
        and (r.get("head_repository") or {}).get("full_name") == gh.repository
    ]


def review_run(
    gh: GitHub, head_sha: str, pull_request: int, workflow: str = REVIEW_WORKFLOW
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The newest successful review run of ``head_sha`` that reviewed ``pull_request``, with its
    artifacts named ``review-pr-<n>``. One head can be the head of two pull requests (a branch opened
    into develop and into staging): each gets its own run, and only the one that uploaded
    ``review-pr-<n>`` reviewed this one. All of them ran the same code (the head's), so looking past
    the others trusts nothing more. No such run: the newest, with none."""
    runs = _successful_runs(gh, workflow, "pull_request", head_sha=head_sha)
    if not runs:
        raise NoReview(f"no successful {workflow} run of pull request head {head_sha[:12]}: re-run the review on the pull request")
    runs.sort(key=lambda r: (int(r.get("run_attempt") or 1), str(r.get("created_at", "")), int(r["id"])), reverse=True)
    name = artifact_name(pull_request)
    for run in runs:
        if found := [a for a in gh.run_artifacts(int(run["id"]), name=name) if a.get("name") == name]:
            return run, found
    return runs[0], []


def review_artifact(gh: GitHub, run: dict[str, Any], found: list[dict[str, Any]], pull_request: int) -> tuple[dict[str, Any], bytes]:
    """The one artifact ``review-pr-<n>`` of ``run`` (``found``: its artifacts of that name), checked
    against the run and its recorded digest, and its bytes."""
    name = artifact_name(pull_request)
    if len(found) != 1:
        raise NoReview(f"run {run['id']} of {workflow_file(str(run.get('path', '')))} has {len(found)} artifact(s) named {name}, not one")
    artifact = found[0]
    origin = artifact.get("workflow_run") or {}
    if artifact.get("expired"):
        raise NoReview(f"artifact {name} of run {run['id']} has expired: re-run the review on the pull request, then deploy again")
    if origin.get("id") != run["id"] or origin.get("head_sha") != run["head_sha"]:
        raise NoReview(f"artifact {artifact.get('id')} does not belong to run {run['id']} at {str(run['head_sha'])[:12]}")
    digest = str(artifact.get("digest") or "")
    if not digest.startswith("sha256:"):
        raise NoReview(f"artifact {artifact.get('id')} has no digest (uploaded by upload-artifact older than v4?): cannot check it")
    archive = gh.artifact_zip(int(artifact["id"]))
    actual = "sha256:" + hashlib.sha256(archive).hexdigest()
    if actual != digest:
        raise NoReview(f"artifact {artifact['id']}: downloaded {actual[:19]}…, GitHub recorded {digest[:19]}…: refused")
    return artifact, archive


def review_json(archive: bytes) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            info = z.getinfo(REVIEW_FILE)
            if info.file_size > MAX_REVIEW_BYTES:
                raise NoReview(f"the review artifact's {REVIEW_FILE} is {info.file_size} bytes: refused")
            data = json.loads(z.read(info))
    except (KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise NoReview(f"the review artifact holds no readable {REVIEW_FILE} ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("environments"), list):
        raise NoReview(f"the review artifact's {REVIEW_FILE} has no environments list")
    return data


def find_review(
    gh: GitHub, *, sha: str, branch: str, before: str = "", requires_approval: bool, workflow: str = REVIEW_WORKFLOW
) -> tuple[Evidence, dict[str, Any]]:
    """The evidence and the review report (``review.json``) a push of ``sha`` to ``branch`` deploys against."""
    branch = branch.removeprefix("refs/heads/")
    pr = merged_pull(gh, sha, branch)
    push_is_the_merge(gh, pr, before, sha)
    head = pr["head"]["sha"]
    approved = approvers(gh, pr)
    if requires_approval and not approved:
        raise NoReview(
            f"pull request #{pr['number']} has no approval of its final head {head[:12]} by someone other than its author; "
            f"{branch} requires one (branch protection should have stopped the merge: check it with `infra preflight`)"
        )
    run, found = review_run(gh, head, int(pr["number"]), workflow)
    artifact, archive = review_artifact(gh, run, found, int(pr["number"]))
    evidence = Evidence(
        gh.repository,
        sha,
        int(pr["number"]),
        head,
        branch,
        approved,
        int(run["id"]),
        int(run.get("run_attempt") or 1),
        int(artifact["id"]),
        str(artifact["digest"]),
    )
    return evidence, review_json(archive)


# --- the evidence a promotion carries -------------------------------------------------------------

DEPLOY_WORKFLOW = "deploy.yml"


def deploy_evidence(gh: GitHub, *, env: str, branch: str, member: str, workflow: str = DEPLOY_WORKFLOW) -> tuple[dict[str, Any], bytes]:
    """The newest successful ``deploy.yml`` run of a push to ``branch`` and ``member`` (a file) of its
    artifact ``deploy-<env>``, checked by digest: the source environment's last deploy record, read
    from the run that made it, never picked by name across the repository (any run on any branch,
    a pull request's included, can upload an artifact of that name)."""
    runs = _successful_runs(gh, workflow, "push", head_branch=branch)
    name = f"deploy-{env}"
    for run in sorted(runs, key=lambda r: (str(r.get("created_at", "")), int(r["id"])), reverse=True):
        found = [a for a in gh.run_artifacts(int(run["id"]), name=name) if a.get("name") == name and not a.get("expired")]
        if not found:
            continue  # a push that deployed nothing (docs only): look further back
        artifact = found[0]
        archive = gh.artifact_zip(int(artifact["id"]))
        if "sha256:" + hashlib.sha256(archive).hexdigest() != artifact.get("digest"):
            raise NoReview(f"artifact {artifact['id']} of run {run['id']}: its bytes do not match the digest GitHub recorded: refused")
        try:
            with zipfile.ZipFile(io.BytesIO(archive)) as z:
                return run, z.read(member)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise NoReview(f"artifact {name} of run {run['id']} holds no {member} ({exc})") from None
    raise NoReview(f"no successful {workflow} run of a push to {branch} recorded {name}: {env} has not been deployed yet")
