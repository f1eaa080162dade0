"""``infra ci-matrix``: which environments a branch deploys, and which jobs a change needs.

The one place that maps branches to environments (read from the environment files), printed as
JSON for a workflow's ``strategy.matrix``. Changed paths decide which halves of the pipeline run:
a change to the synth inputs or the tooling runs the infrastructure jobs, a change to the app runs
the image jobs, a change to docs or tests alone runs neither (``ci.yml`` tests every push anyway).
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.loader import Environments, loaded
from environments.schema import Environment
from infra.git import git
from infra.synthesized.inputs import INPUT_DIRS, INPUT_FILES, INPUT_TREES

# paths (globs) whose change needs the infrastructure jobs: the synth inputs, the tooling that
# reviews and deploys them, and the pinned toolchain
INFRA_PATHS = (
    *(f"{d}/**" for d in (*INPUT_DIRS, *INPUT_TREES)),
    *INPUT_FILES,
    "infra/**",
    "pyproject.toml",
    "package.json",
    "package-lock.json",
    "requirements-checkov.txt",
    ".github/workflows/deploy.yml",
    ".github/workflows/review.yml",
)
# paths whose change needs the image jobs (build, test, push)
APP_PATHS = ("app/**", "cloudbuild.yaml", ".github/workflows/deploy.yml")
# paths that need neither (ci.yml still runs the tests on every push)
QUIET_PATHS = ("docs/**", "*.md", "tests/**", "benchmarks/**", "LICENSE", ".gitignore", ".github/dependabot.yml")
ZERO_SHA = "0" * 40


def _match(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) or (p.endswith("/**") and path.startswith(p[:-2])) for p in patterns)


@dataclass
class Scope:
    """What a set of changed paths needs; ``None`` paths means "unknown: assume everything"."""

    infra: bool
    app: bool
    reasons: dict[str, list[str]] = field(default_factory=dict)


def classify(paths: list[str] | None) -> Scope:
    if paths is None:
        return Scope(True, True, {"infra": ["(changed files unknown)"], "app": ["(changed files unknown)"]})
    scope = Scope(False, False, {"infra": [], "app": []})
    for path in paths:
        infra, app = _match(path, INFRA_PATHS), _match(path, APP_PATHS)
        if not infra and not app and not _match(path, QUIET_PATHS):
            infra = app = True  # unknown paths (Makefile, other workflows, .ci): run both, to be safe
        if infra:
            scope.infra = True
            scope.reasons["infra"].append(path)
        if app:
            scope.app = True
            scope.reasons["app"].append(path)
    return scope


def changed_since(rev: str, repo: Path) -> list[str] | None:
    """Paths changed between ``rev`` and HEAD; ``None`` when ``rev`` is unknown (a new branch's
    all-zero ``before``, a shallow clone without it): the caller then assumes everything changed."""
    if not rev or rev == ZERO_SHA:
        return None
    try:
        out = git(repo, "diff", "--name-only", f"{rev}...HEAD")
    except subprocess.CalledProcessError:
        return None
    return [line for line in out.splitlines() if line]


def entry(env: Environment, envs: Environments) -> dict[str, Any]:
    """One matrix entry: everything a deploy/plan job needs about ``env``, derived from its file."""
    ci = env.ci
    source = envs.source_of(env.name)
    return {
        "env": env.name,
        "branch": env.branch,
        "requires_approval": env.requires_approval,
        "promotes_to": env.promotes_to or "",
        # the environment that promotes into this one: its last deploy is the evidence a promotion carries
        "source_env": source.name if source else "",
        "source_branch": source.branch if source else "",
        "clouds": [c for c in ("aws", "gcp") if getattr(env, c) is not None],
        "aws_region": env.aws.region if env.aws else "",
        "aws_deploy_role": env.github_role_arn("deploy") or "",
        "aws_plan_role": env.github_role_arn("plan") or "",
        "gcp_project": env.gcp.project_id if env.gcp else "",
        "gcp_workload_identity_provider": (ci.gcp_workload_identity_provider or "") if ci else "",
        "gcp_deploy_service_account": env.gcp_service_account("deploy") or "",
        "gcp_plan_service_account": env.gcp_service_account("plan") or "",
        "plan_in_review": bool(ci and ci.plan_in_review),
        # the GitHub Environments: the deploy's (its reviewers approve the apply), and the pull
        # request plan's (the plan role trusts only it; with reviewers when the environment waits
        # for an approval, who then approve running the pull request's code with that role)
        "deploy_environment": env.github_environment("deploy"),
        "plan_environment": env.github_environment("plan"),
        # the stacks in apply order, and where each is planned and applied: the registries and the
        # environment stack on GitHub-hosted runners, the workloads stack (the cluster's private
        # API) on the CodeBuild-hosted runner in the VPC
        "stacks": env.stack_names(),
        "registries_stack": f"{env.name}-registries" if env.has_registries_stack else "",
        "workloads_stack": f"{env.name}-workloads" if env.has_workloads_stack else "",
        "runner": f"codebuild-{env.ci_runner_name}" if env.has_ci_runner else "",
        "gke": "gcp" in env.cluster_clouds(),
        # the registries the image step logs in to: this environment's, and the one it copies
        # promoted images from (ECR by account id; Artifact Registry by regional host)
        "ecr_registries": ",".join(dict.fromkeys(e.aws.account_id for e in (env, source) if e is not None and e.aws is not None))
        if env.aws
        else "",
        "gcp_registry_host": f"{env.gcp.region}-docker.pkg.dev" if env.gcp else "",
        "aws_training_role": f"arn:aws:iam::{env.aws.account_id}:role/{env.resource_name('training')}" if env.aws and env.models else "",
        "model_version": (env.models.version or "") if env.models else "",
        # where the image jobs push: ECR repository URLs, Artifact Registry image paths
        "image_repositories": {
            "aws": [env.image_repository("aws", r.name) for r in env.aws.registries] if env.aws else [],
            "gcp": [env.image_repository("gcp", r.name) for r in env.gcp.registries] if env.gcp else [],
        },
    }


def environments_for(branch: str | None, envs: dict[str, Environment]) -> list[Environment]:
    if branch is None:
        return list(envs.values())
    branch = branch.removeprefix("refs/heads/")
    return [e for e in envs.values() if e.branch == branch]


def matrix(branch: str | None, paths: list[str] | None, environments: Environments | Path) -> dict[str, Any]:
    """The JSON a workflow reads: ``matrix`` for ``strategy.matrix`` (``{"include": [...]}``),
    ``envs``, and whether the infrastructure and image jobs are needed."""
    envs = loaded(environments)  # loading rejects two environments on one branch, naming the file
    chosen = environments_for(branch, envs)  # a feature branch: no environment, an empty matrix
    scope = classify(paths)
    return {
        "branch": branch or "",
        "envs": [e.name for e in chosen],
        "matrix": {"include": [entry(e, envs) for e in chosen]},
        "infra": scope.infra and bool(chosen),
        "app": scope.app and bool(chosen),
        "reasons": scope.reasons,
    }


def github_output(result: dict[str, Any]) -> str:
    """``key=value`` lines for ``$GITHUB_OUTPUT`` (JSON values on one line; booleans as true/false)."""
    lines = []
    for key in ("envs", "matrix", "infra", "app"):
        value = result[key]
        lines.append(f"{key}={json.dumps(value, separators=(',', ':')) if not isinstance(value, bool) else str(value).lower()}")
    return "\n".join(lines) + "\n"
