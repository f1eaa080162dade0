"""``infra bootstrap`` on GCP against the local fake of the Google REST APIs: what it enables,
creates and grants, that a second run changes nothing, the finding when the environment file names
another provider, and every refusal (nothing but the APIs written)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from environments.schema import Environment
from infra.bootstrap import BootstrapRefused, bootstrap
from infra.bootstrap.gcp import wif_members
from infra.cli.app import main
from infra.clouds.gcp_requirements import gcp_data, services
from infra.errors import InfraError
from tests.fakes.google import BillingAccount, GoogleState, fake_google, project_for

NUMBER = "100000000002"  # what staging's ci.gcp_workload_identity_provider names
POOL = f"projects/{NUMBER}/locations/global/workloadIdentityPools/github"


@pytest.fixture(scope="module")
def google_server() -> Iterator[tuple[str, GoogleState]]:
    state = GoogleState()
    with fake_google(state) as url:
        yield url, state


@pytest.fixture
def google(google_server: tuple[str, GoogleState], environments: dict[str, Environment], monkeypatch: pytest.MonkeyPatch) -> GoogleState:
    url, state = google_server
    state.reset()
    env = environments["staging"]
    state.projects[env.gcp.project_id] = project_for(env, NUMBER)  # type: ignore[union-attr]
    state.billing[env.gcp.billing_account] = BillingAccount(env.gcp.billing_account)  # type: ignore[union-attr]
    monkeypatch.setenv("GOOGLE_API_ENDPOINT", url)
    return state


def _members(policy: dict[str, Any], role: str) -> list[str]:
    return next((b["members"] for b in policy["bindings"] if b["role"] == role), [])


def test_bootstrap_gcp_creates_apis_agents_accounts_roles_and_federation_then_changes_nothing(
    google: GoogleState, environments: dict[str, Environment]
) -> None:
    env = environments["staging"]
    result = bootstrap(env, clouds=("gcp",))
    assert result.changed and result.findings == [], result.findings
    project = google.projects["mlp-staging-4410"]
    assert set(services(env)) <= project.enabled and "secretmanager.googleapis.com" in project.enabled
    assert sum(1 for m, p in google.requests if p.endswith(":batchEnable")) == 1  # 15 missing: one call (<= 20)
    assert project.agents == {
        f"service-{NUMBER}@gcp-sa-artifactregistry.iam.gserviceaccount.com",
        f"service-{NUMBER}@gcp-sa-cloudbuild.iam.gserviceaccount.com",
    }
    assert _members(project.policy, "roles/artifactregistry.serviceAgent") == [
        f"serviceAccount:service-{NUMBER}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
    ]
    deploy, plan = (
        "mlp-staging-deploy@mlp-staging-4410.iam.gserviceaccount.com",
        "mlp-staging-plan@mlp-staging-4410.iam.gserviceaccount.com",
    )
    assert set(project.service_accounts) == {deploy, plan}
    held = {b["role"] for b in project.policy["bindings"] if f"serviceAccount:{plan}" in b["members"]}
    assert held == {r["role"] for r in gcp_data()["plan_roles"]} and "roles/viewer" not in held
    assert f"serviceAccount:{deploy}" in _members(project.policy, "roles/container.admin")
    billing = google.billing["01A2B3-C4D5E6-F7A8B9"].policy
    assert _members(billing, "roles/billing.costsManager") == [f"serviceAccount:{deploy}"]
    assert _members(billing, "roles/billing.viewer") == [f"serviceAccount:{plan}"]
    provider = project.providers[("github", "github")]
    assert provider["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
    assert provider["attributeCondition"] == "assertion.repository == 'acme-ml/ml-platform'"
    assert provider["attributeMapping"]["attribute.sub"] == "assertion.sub"
    assert provider["attributeMapping"]["attribute.pr_sub"] == "assertion.sub.extract('{prefix}@refs/pull/')"
    repo, wf = "repo:acme-ml/ml-platform", "job_workflow_ref:acme-ml/ml-platform/.github/workflows"
    assert _members(project.service_accounts[deploy]["policy"], "roles/iam.workloadIdentityUser") == [
        f"principalSet://iam.googleapis.com/{POOL}/attribute.sub/{repo}:environment:staging:{wf}/deploy.yml@refs/heads/staging"
    ]
    assert _members(project.service_accounts[plan]["policy"], "roles/iam.workloadIdentityUser") == [
        f"principalSet://iam.googleapis.com/{POOL}/attribute.pr_sub/{repo}:environment:staging-plan:{wf}/review.yml",
        f"principalSet://iam.googleapis.com/{POOL}/attribute.sub/{repo}:ref:refs/heads/staging:{wf}/deploy.yml@refs/heads/staging",
        f"principalSet://iam.googleapis.com/{POOL}/attribute.sub/{repo}:ref:refs/heads/main:{wf}/drift.yml@refs/heads/main",
    ]
    # the pull-request attribute keeps what precedes "@refs/pull/": the value a PR token maps to
    pr_token_sub = f"{repo}:environment:staging-plan:{wf}/review.yml@refs/pull/42/merge"
    assert wif_members(env, NUMBER, "plan")[0].endswith("/" + pr_token_sub.split("@refs/pull/")[0])
    second = bootstrap(env, clouds=("gcp",))
    assert not second.changed, [s for s in second.steps if s.status != "unchanged"]


def test_bootstrap_gcp_reports_a_provider_the_file_does_not_name(
    google: GoogleState, environments: dict[str, Environment], capsys: pytest.CaptureFixture[str]
) -> None:
    google.projects["mlp-staging-4410"].number = "987654321098"
    result = bootstrap(environments["staging"], clouds=("gcp",))
    assert result.findings == [
        "ci.gcp_workload_identity_provider: the environment file names projects/100000000002/locations/global/workloadIdentityPools/github/"
        "providers/github; set it to projects/987654321098/locations/global/workloadIdentityPools/github/providers/github (project "
        "mlp-staging-4410 is number 987654321098)"
    ]
    assert main(["bootstrap", "staging", "--cloud", "gcp", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["findings"] == result.findings


def test_bootstrap_gcp_upgrades_a_provider_mapped_the_old_way(google: GoogleState, environments: dict[str, Environment]) -> None:
    """docs/cicd.md's earlier gcloud commands: google.subject=assertion.sub, attribute.environment; same condition."""
    project = google.projects["mlp-staging-4410"]
    project.pools["github"] = {"name": POOL, "state": "ACTIVE"}
    project.providers[("github", "github")] = {
        "name": f"{POOL}/providers/github", "state": "ACTIVE", "oidc": {"issuerUri": "https://token.actions.githubusercontent.com"},
        "attributeCondition": "assertion.repository=='acme-ml/ml-platform'",
        "attributeMapping": {"google.subject": "assertion.sub", "attribute.environment": "assertion.environment"},
    }  # fmt: skip
    result = bootstrap(environments["staging"], clouds=("gcp",))
    step = next(s for s in result.steps if s.what == "Workload Identity provider github")
    assert step.status == "updated" and "google.subject" in step.detail
    mapping = project.providers[("github", "github")]["attributeMapping"]
    assert mapping["attribute.environment"] == "assertion.environment" and mapping["attribute.sub"] == "assertion.sub"


def test_bootstrap_gcp_without_billing_permission_is_a_finding(google: GoogleState, environments: dict[str, Environment]) -> None:
    google.billing["01A2B3-C4D5E6-F7A8B9"].denied = True
    result = bootstrap(environments["staging"], clouds=("gcp",))
    assert "gcloud billing accounts add-iam-policy-binding 01A2B3-C4D5E6-F7A8B9" in result.findings[0]
    assert ("billing account 01A2B3-C4D5E6-F7A8B9 roles", "kept") in [(s.what, s.status) for s in result.steps]


def _old_plan_account(project: Any, *, roles: list[str] = (), members: list[str] = ()) -> str:  # type: ignore[assignment]
    email = "mlp-staging-plan@mlp-staging-4410.iam.gserviceaccount.com"
    project.service_accounts[email] = {"name": f"projects/mlp-staging-4410/serviceAccounts/{email}", "email": email, "disabled": False,
                                       "policy": {"bindings": [{"role": "roles/iam.workloadIdentityUser", "members": list(members)}]}}  # fmt: skip
    for role in roles:
        project.policy["bindings"].append({"role": role, "members": [f"serviceAccount:{email}"]})
    return email


REFUSALS = {
    "plan-viewer": "holds roles/viewer on mlp-staging-4410",
    "broader-impersonation": "can also be impersonated by principalSet://iam.googleapis.com/projects/100000000002/locations/global/workloadIdentityPools/github/attribute.repository/acme-ml/ml-platform",
    "other-condition": "bootstrap does not change a condition",
    "other-issuer": "trusts the issuer https://gitlab.com",
    "disabled-account": "is disabled",
    "deleted-pool": "is deleted",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bootstrap_gcp_refuses_and_writes_nothing_but_the_apis(
    case: str, google: GoogleState, environments: dict[str, Environment]
) -> None:
    project = google.projects["mlp-staging-4410"]
    if case == "plan-viewer":
        _old_plan_account(project, roles=["roles/viewer"])
    if case == "broader-impersonation":
        _old_plan_account(project, members=[f"principalSet://iam.googleapis.com/{POOL}/attribute.repository/acme-ml/ml-platform"])
    if case == "disabled-account":
        project.service_accounts[_old_plan_account(project)]["disabled"] = True
    if case in ("other-condition", "other-issuer", "deleted-pool"):
        project.pools["github"] = {"name": POOL, "state": "DELETED" if case == "deleted-pool" else "ACTIVE"}
        project.providers[("github", "github")] = {
            "name": f"{POOL}/providers/github", "state": "ACTIVE",
            "oidc": {"issuerUri": "https://gitlab.com" if case == "other-issuer" else "https://token.actions.githubusercontent.com"},
            "attributeCondition": "assertion.repository_owner == 'acme-ml'" if case == "other-condition" else "assertion.repository == 'acme-ml/ml-platform'",
            "attributeMapping": {"google.subject": "assertion.sub"},
        }  # fmt: skip
    policy_before = json.dumps(project.policy, sort_keys=True)
    accounts_before = set(project.service_accounts)
    with pytest.raises(BootstrapRefused, match=re.escape(REFUSALS[case])):
        bootstrap(environments["staging"], clouds=("gcp",))
    assert json.dumps(project.policy, sort_keys=True) == policy_before and set(project.service_accounts) == accounts_before
    assert project.agents == set() and not [r for r in google.requests if r[0] != "GET" and ":setIamPolicy" in r[1]]


def test_bootstrap_gcp_needs_the_project(google: GoogleState, environments: dict[str, Environment]) -> None:
    del google.projects["mlp-staging-4410"]
    with pytest.raises(InfraError, match=r"gcp\.project_id: project mlp-staging-4410 does not exist") as exc:
        bootstrap(environments["staging"], clouds=("gcp",))
    assert exc.value.exit_code == 2
