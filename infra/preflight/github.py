"""The GitHub checks of preflight, over the REST API (:mod:`infra.clouds.github`: the token from
``$GITHUB_TOKEN``, the repository from ``ci.repository``, the API from ``$GITHUB_API_URL``).

=========================  ==========================================================================
check                      API call
=========================  ==========================================================================
github-environment         GET /repos/{o}/{r}/environments/{env} (a missing environment is a failure:
                           "a job referencing an environment that does not exist creates it" without
                           protection rules, GitHub docs "Managing environments for deployment")
github-reviewers           its protection_rules: required_reviewers, ≥ 1 reviewer, prevent_self_review
github-branch-policy       deployment_branch_policy.custom_branch_policies and
                           GET .../environments/{env}/deployment-branch-policies: only ``branch``
github-plan-environment    GET .../environments/{env}-plan (environments that wait for an approval)
github-oidc-sub            GET /repos/{o}/{r}/actions/oidc/customization/sub = OIDC_CLAIM_KEYS
=========================  ==========================================================================
"""

from __future__ import annotations

import os
from typing import Any

from environments.schema import Environment
from environments.schema.identity import OIDC_CLAIM_KEYS
from infra.clouds.github import GitHub, GitHubError
from infra.preflight.report import Report


def _settings(env: Environment, name: str) -> str:
    assert env.ci is not None
    return f"https://github.com/{env.ci.repository}/settings/environments (environment {name})"


def check_github(env: Environment, report: Report) -> None:
    assert env.ci is not None
    gh = GitHub.from_env(env.ci.repository)
    fix = "give $GITHUB_TOKEN read access to the repository's Actions and environments"
    report.run("github-environment", env.name, lambda: _environment(env, gh, report), fix)
    if env.requires_approval:
        plan = env.github_environment("plan")
        report.run("github-plan-environment", plan, lambda: _plan_environment(env, gh, plan, report), fix)
    else:
        report.skip(
            "github-plan-environment",
            env.github_environment("plan"),
            "requires_approval is false: pull-request plans need no reviewers (the first review run creates it)",
        )
    report.run(
        "github-oidc-sub",
        env.ci.repository,
        lambda: _oidc(env, gh, report),
        "give $GITHUB_TOKEN the repository's Administration (read) permission",
    )


def _reviewers_rule(environment: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in environment.get("protection_rules", []) if r.get("type") == "required_reviewers"), None)


def _environment(env: Environment, gh: GitHub, report: Report) -> None:
    found = gh.environment(env.name)
    if found is None:
        report.fail(
            "github-environment", env.name, "missing: the first job that names it would create it without protection",
            f"create it: {_settings(env, env.name)} > New environment {env.name}",
        )  # fmt: skip
        for name in ("github-reviewers", "github-branch-policy"):
            report.skip(name, env.name, "no environment (see github-environment)")
        return
    report.ok("github-environment", env.name, "exists")
    if env.requires_approval:
        rule = _reviewers_rule(found)
        reviewers = (rule or {}).get("reviewers", [])
        if not reviewers:
            report.fail(
                "github-reviewers",
                env.name,
                "no required reviewers",
                f"{_settings(env, env.name)} > Required reviewers: add at least one, tick Prevent self-review",
            )
        elif not (rule or {}).get("prevent_self_review"):
            report.fail("github-reviewers", env.name, f"{len(reviewers)} reviewer(s), but one can approve their own deploy",
                        f"{_settings(env, env.name)} > Required reviewers: tick Prevent self-review")  # fmt: skip
        else:
            report.ok("github-reviewers", env.name, f"{len(reviewers)} reviewer(s), no self-review")
    else:
        report.skip("github-reviewers", env.name, "requires_approval is false")
    policy = found.get("deployment_branch_policy") or {}
    fix = f"{_settings(env, env.name)} > Deployment branches and tags > Selected branches and tags: only {env.branch}"
    if not policy.get("custom_branch_policies"):
        what = "protected branches" if policy.get("protected_branches") else "every branch"
        report.fail("github-branch-policy", env.name, f"{what} may deploy to it", fix)
        return
    names = sorted((p.get("name", ""), p.get("type", "branch")) for p in gh.deployment_branch_policies(env.name))
    if names == [(env.branch, "branch")]:
        report.ok("github-branch-policy", env.name, f"only {env.branch}")
    else:
        report.fail("github-branch-policy", env.name, f"allows {', '.join(f'{t} {n}' for n, t in names) or 'nothing'}", fix)


def _plan_environment(env: Environment, gh: GitHub, plan: str, report: Report) -> None:
    found = gh.environment(plan)
    fix = f"{_settings(env, plan)}: create {plan} with Required reviewers (its reviewers approve running a pull request's plan)"
    if found is None:
        report.fail("github-plan-environment", plan, "missing: a pull-request plan would run unapproved", fix)
    elif not (_reviewers_rule(found) or {}).get("reviewers"):
        report.fail("github-plan-environment", plan, "no required reviewers", fix)
    else:
        report.ok("github-plan-environment", plan, "exists, with required reviewers")


def _oidc(env: Environment, gh: GitHub, report: Report) -> None:
    assert env.ci is not None
    try:
        found = gh.oidc_sub_customization()
    except GitHubError as exc:
        if exc.status != 403:
            raise
        found = None
    if found is None and os.environ.get("GITHUB_ACTIONS") == "true":
        # the endpoint needs Administration (read), which no workflow's GITHUB_TOKEN can be given
        # (GitHub REST, "Get the customization template for an OIDC subject claim for a repository");
        # a wrong template fails closed (every role's trust names job_workflow_ref, no token matches)
        report.skip(
            "github-oidc-sub",
            env.ci.repository,
            "the workflow token cannot read the template (Administration: read); a wrong one fails closed; "
            "a repository admin's `infra preflight` checks it",
        )
        return
    current = found or {"use_default": True}
    keys = current.get("include_claim_keys") or []
    if not current.get("use_default") and tuple(keys) == OIDC_CLAIM_KEYS:
        report.ok("github-oidc-sub", env.ci.repository, f"subjects are {':'.join(OIDC_CLAIM_KEYS)}")
        return
    body = " ".join(f"-f 'include_claim_keys[]={k}'" for k in OIDC_CLAIM_KEYS)
    what = "the default template" if current.get("use_default") else f"claim keys {keys}"
    report.fail(
        "github-oidc-sub", env.ci.repository, f"{what}: tokens would not match the roles' subjects",
        f"gh api -X PUT repos/{env.ci.repository}/actions/oidc/customization/sub -F use_default=false {body} (a repository admin)",
    )  # fmt: skip
