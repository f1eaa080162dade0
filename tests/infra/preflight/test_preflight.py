"""``infra preflight`` against moto, the AWS-gaps fake, the Google fake and the GitHub fake: one
passing run, then one failing case per check (its name, exit 1, the printed fix)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from environments.loader import load_environments
from environments.schema import Environment
from infra.cli.app import main
from infra.preflight import preflight
from tests.fakes.github import Environment as GhEnvironment
from tests.infra.preflight.conftest import REPO, World, eks_versions

CHECKS = {
    "placeholder", "aws-account", "aws-zone", "aws-instance-offering", "aws-vcpu-quota", "aws-eks-version", "aws-lambda-concurrency",
    "aws-bootstrap", "aws-github-connection", "aws-image", "gcp-project", "gcp-services", "gcp-service-agent", "gcp-billing", "gcp-budget-permission",
    "gcp-permissions", "gcp-gpu-quota", "gcp-accelerator-offering", "gcp-rbac-group", "gcp-build-connection", "gcp-image",
    "gcp-promotion-reader",
    "github-environment", "github-reviewers", "github-branch-policy", "github-plan-environment", "github-oidc-sub",
}  # fmt: skip


def with_connection(env: Environment, connection: str = "github") -> Environment:
    """The environment with another gcp.build_connection."""
    assert env.gcp is not None
    return env.model_copy(update={"gcp": env.gcp.model_copy(update={"build_connection": connection})})


def test_preflight_passes_on_a_ready_world(fresh: World) -> None:
    production = load_environments(fresh.env_dir)["production"]
    report = preflight(with_connection(fresh.env()), file=fresh.file, images=True, promotes_to=production)
    assert report.passed, [(c.name, c.subject, c.detail) for c in report.failed]
    ran = {c.name for c in report.checks if c.ok}
    assert ran == CHECKS - {"github-reviewers", "github-plan-environment"}, CHECKS - ran  # staging needs no approval
    skipped = {c.name: c.detail for c in report.checks if c.ok is None}
    assert skipped == {"github-plan-environment": "requires_approval is false: pull-request plans need no reviewers (the first review run creates it)",
                       "github-reviewers": "requires_approval is false"}  # fmt: skip
    quota = next(c for c in report.checks if c.name == "aws-vcpu-quota" and c.subject.startswith("L-3819A6DF"))
    assert quota.detail == "12 vCPUs at max, quota 64 (applied)"  # g6.xlarge = 4 vCPUs, l4 max 3
    system = next(c for c in report.checks if c.name == "aws-vcpu-quota" and c.subject.startswith("L-1216C47A"))
    assert system.detail == "8 vCPUs at max, quota 64 (applied)"  # m6i.large = 2 vCPUs, max 4
    gpu = next(c for c in report.checks if c.name == "gcp-gpu-quota" and c.subject.startswith("PREEMPTIBLE_NVIDIA_L4_GPUS"))
    assert gpu.detail == "6 GPUs at max, quota 16"  # spot: max 3 per zone x 2 zones x 1 GPU
    assert main(["preflight", "staging", "--env-dir", str(fresh.env_dir), "--images"]) == 0


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return change


def _approval(data: dict[str, Any]) -> None:
    data["requires_approval"] = True


def _rebootstrap(w: World) -> None:
    from infra.bootstrap import bootstrap

    bootstrap(w.env(), check_account=True)


def _drop_oidc_provider(w: World) -> None:
    iam = boto3.client("iam")
    iam.delete_open_id_connect_provider(
        OpenIDConnectProviderArn=iam.list_open_id_connect_providers()["OpenIDConnectProviderList"][0]["Arn"]
    )
    w.undo.append(lambda: _rebootstrap(w))


def _gcp_project(w: World) -> Any:
    return w.google.projects["mlp-staging-4410"]


# case: (check, subject part, fix part, setup, cli args)
CASES: dict[str, tuple[str, str, str, Callable[[World], None], list[str]]] = {
    "placeholder": ("placeholder", "budget.recipients[0]", "replace budget.recipients[0] in",
                    lambda w: w.edit(_set("budget.recipients", ["ml-platform@example.com"])), ["--cloud", "aws"]),
    "aws-account": ("aws-account", "123456789012", "use credentials of account 123456789012",
                    lambda w: w.edit(_set("aws.account_id", "123456789012")), ["--cloud", "aws"]),
    "aws-zone": ("aws-zone", "us-east-1e", "replace us-east-1e in aws.network.zones",
                 lambda w: w.edit(_set("aws.network.zones", ["us-east-1a", "us-east-1e"])), ["--cloud", "aws"]),
    "aws-instance-offering": ("aws-instance-offering", "l4: g6e.xlarge", "choose an instance type offered in every zone",
                              lambda w: (w.edit(_set("aws.network.zones", ["us-east-1a", "us-east-1b", "us-east-1f"])),
                                         w.edit(_set("aws.cluster.gpu_node_groups.0.instance_types", ["g6e.xlarge"]))), ["--cloud", "aws"]),
    "aws-vcpu-quota": ("aws-vcpu-quota", "L-3819A6DF", "--quota-code L-3819A6DF --desired-value 12",
                       lambda w: w.gaps.quotas.update({("ec2", "L-3819A6DF"): (4.0, 64.0)}), ["--cloud", "aws"]),
    "aws-vcpu-quota-default": ("aws-vcpu-quota", "L-DB2E81BA", "--quota-code L-DB2E81BA --desired-value 12",
                               lambda w: (w.edit(_set("aws.cluster.gpu_node_groups.0.capacity", "on_demand")),
                                          w.gaps.quotas.update({("ec2", "L-DB2E81BA"): (None, 0.0)})), ["--cloud", "aws"]),
    # the live API, not facts.yaml: 1.35 leaving standard support in 10 days
    "aws-eks-version": ("aws-eks-version", "1.35", "set aws.cluster.kubernetes_version to 1.36",
                        lambda w: setattr(w.gaps, "cluster_versions", eks_versions(**{"1.35": 10, "1.36": 120})), ["--cloud", "aws"]),
    "aws-lambda-concurrency": ("aws-lambda-concurrency", "1 endpoint(s)", "--quota-code L-B99A9384 --desired-value 110",
                               lambda w: setattr(w.gaps, "concurrent_executions", 50), ["--cloud", "aws"]),
    "aws-bootstrap": ("aws-bootstrap", "OIDC provider", "run `infra bootstrap staging` with credentials of account 210987654321",
                      lambda w: _drop_oidc_provider(w), ["--cloud", "aws"]),
    "aws-github-connection": ("aws-github-connection", "mlp-staging-github", "Update pending connection",
                              lambda w: w.gaps.connections.update({"mlp-staging-github": "PENDING"}), ["--cloud", "aws"]),
    "aws-github-connection-missing": ("aws-github-connection", "mlp-staging-github", "run `infra bootstrap staging`",
                                      lambda w: w.gaps.connections.clear(), ["--cloud", "aws"]),
    "aws-image": ("aws-image", "serving: mlp-staging-model-server:v9.9.9", "docker buildx build --push",
                  lambda w: w.edit(_set("serving.image_tag", "v9.9.9")), ["--cloud", "aws", "--images"]),
    "aws-image-index": ("aws-image", "aws.endpoints[0]", "rebuild without attestations (docker/buildx#1533)",
                        lambda w: w.edit(_set("aws.endpoints.0.image_tag", "v1.0.0-lambda-attested")), ["--cloud", "aws", "--images"]),
    "gcp-project": ("gcp-project", "mlp-staging-4410", "set ci.gcp_workload_identity_provider to projects/444555666777/",
                    lambda w: w.edit(_set("ci.gcp_workload_identity_provider",
                                          "projects/999/locations/global/workloadIdentityPools/github/providers/github")), ["--cloud", "gcp"]),
    "gcp-services": ("gcp-services", "mlp-staging-4410", "gcloud services enable container.googleapis.com",
                     lambda w: _gcp_project(w).enabled.discard("container.googleapis.com"), ["--cloud", "gcp"]),
    "gcp-service-agent": ("gcp-service-agent", "gcp-sa-artifactregistry", "gcloud beta services identity create --service=artifactregistry",
                          lambda w: _gcp_project(w).policy.update(bindings=[b for b in _gcp_project(w).policy["bindings"]
                                                                            if b["role"] != "roles/artifactregistry.serviceAgent"]), ["--cloud", "gcp"]),
    "gcp-billing": ("gcp-billing", "mlp-staging-4410", "gcloud billing projects link mlp-staging-4410",
                    lambda w: setattr(_gcp_project(w), "billing_enabled", False), ["--cloud", "gcp"]),
    "gcp-budget-permission": ("gcp-budget-permission", "0A1B2C-3D4E5F-6A7B8C", "--role=roles/billing.costsManager",
                              lambda w: setattr(w.google.billing["0A1B2C-3D4E5F-6A7B8C"], "permissions", set()), ["--cloud", "gcp"]),
    "gcp-permissions": ("gcp-permissions", "mlp-staging-4410", "run preflight as the deploy account",
                        lambda w: setattr(_gcp_project(w), "permissions", {"resourcemanager.projects.get"}), ["--cloud", "gcp"]),
    "gcp-gpu-quota": ("gcp-gpu-quota", "PREEMPTIBLE_NVIDIA_L4_GPUS", "request PREEMPTIBLE_NVIDIA_L4_GPUS >= 6 in us-central1",
                      lambda w: next(q for q in _gcp_project(w).region_quotas["us-central1"] if q["metric"] == "PREEMPTIBLE_NVIDIA_L4_GPUS").update(limit=2.0),
                      ["--cloud", "gcp"]),
    "gcp-gpu-quota-global": ("gcp-gpu-quota", "GPUS_ALL_REGIONS", "request GPUS_ALL_REGIONS >= 6",
                             lambda w: _gcp_project(w).project_quotas[0].update(limit=0.0), ["--cloud", "gcp"]),
    "gcp-accelerator-offering": ("gcp-accelerator-offering", "l4 in us-central1-c", "gcloud compute accelerator-types list",
                                 lambda w: _gcp_project(w).accelerators["us-central1-c"].discard("nvidia-l4"), ["--cloud", "gcp"]),
    "gcp-rbac-group": ("gcp-rbac-group", "gke-security-groups@mlp-corp.io", "create gke-security-groups@mlp-corp.io in Google Workspace",
                       lambda w: w.google.groups.clear(), ["--cloud", "gcp"]),
    "gcp-promotion-reader": ("gcp-promotion-reader", "mlp-production-deploy@", "run `infra bootstrap production`",
                             lambda w: w.google.projects["mlp-prod-4410"].service_accounts.clear(), ["--cloud", "gcp"]),
    "gcp-image": ("gcp-image", "serving:", "infra cloudbuild submit staging",
                  lambda w: w.edit(_set("serving.image_tag", "v9.9.9")), ["--cloud", "gcp", "--images"]),
    "github-environment": ("github-environment", "staging", f"https://github.com/{REPO}/settings/environments",
                           lambda w: w.github.environments.pop("staging"), ["--cloud", "gcp"]),
    "github-reviewers": ("github-reviewers", "staging", "tick Prevent self-review",
                         lambda w: (w.edit(_approval), w.github.environments.__setitem__(
                             "staging", GhEnvironment(name="staging", reviewers=[("User", "bob")], custom_branches=["staging"]))), ["--cloud", "gcp"]),
    "github-reviewers-none": ("github-reviewers", "staging", "Required reviewers: add at least one",
                              lambda w: (w.edit(_approval), w.github.environments.__setitem__(
                                  "staging", GhEnvironment(name="staging", custom_branches=["staging"]))), ["--cloud", "gcp"]),
    "github-branch-policy": ("github-branch-policy", "staging", "Selected branches and tags: only staging",
                             lambda w: setattr(w.github.environments["staging"], "custom_branches", ["staging", "feature/*"]), ["--cloud", "gcp"]),
    "github-plan-environment": ("github-plan-environment", "staging-plan", "create staging-plan with Required reviewers",
                                lambda w: (w.edit(_approval), w.github.environments.pop("staging-plan")), ["--cloud", "gcp"]),
    "github-oidc-sub": ("github-oidc-sub", REPO, "actions/oidc/customization/sub -F use_default=false -f 'include_claim_keys[]=repo'",
                        lambda w: setattr(w.github, "oidc_sub", {"use_default": True}), ["--cloud", "gcp"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_preflight_fails_per_check(case: str, fresh: World, capsys: pytest.CaptureFixture[str]) -> None:
    check, subject, fix, setup, args = CASES[case]
    setup(fresh)
    assert main(["preflight", "staging", "--env-dir", str(fresh.env_dir), "--format", "json", *args]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = [c for c in report["checks"] if c["ok"] is False]
    mine = [c for c in failed if c["name"] == check and subject in c["subject"]]
    assert mine, failed
    assert fix in mine[0]["fix"], mine[0]


def test_preflight_build_connection_pending(fresh: World) -> None:
    """A connection that is not installed, one that does not exist, and an environment without triggers."""
    _gcp_project(fresh).connections[("us-central1", "github")]["installationState"] = {
        "stage": "PENDING_INSTALL_APP", "message": "install the app", "actionUri": "https://github.com/apps/google-cloud-build/installations/new",
    }  # fmt: skip
    report = preflight(with_connection(fresh.env()), file=fresh.file, clouds=("gcp",), github=False)
    (failed,) = report.failed
    assert failed.name == "gcp-build-connection" and failed.fix.endswith("https://github.com/apps/google-cloud-build/installations/new")
    missing = preflight(with_connection(fresh.env(), "gitlab"), file=fresh.file, clouds=("gcp",), github=False)
    assert [c.detail for c in missing.failed] == ["no such connection"]
    assert "gcloud builds connections create github gitlab --region=us-central1" in missing.failed[0].fix
    env = fresh.env()
    assert env.gcp is not None
    no_triggers = env.model_copy(update={"gcp": env.gcp.model_copy(update={"build_connection": None, "build_triggers": []})})
    without = preflight(no_triggers, file=fresh.file, clouds=("gcp",), github=False)
    assert next(c for c in without.checks if c.name == "gcp-build-connection").ok is None


def test_preflight_api_error_fails_the_check_and_the_others_still_run(fresh: World) -> None:
    """A permission error inside one check is that check's failure, not a crash."""
    fresh.gaps.quotas.pop(("ec2", "L-1216C47A"))  # NoSuchResource on the default too
    report = preflight(fresh.env(), file=fresh.file, clouds=("aws",), github=False)
    failed = {c.name: c for c in report.failed}
    assert list(failed) == ["aws-vcpu-quota"] and "NoSuchResourceException" in failed["aws-vcpu-quota"].detail
    assert failed["aws-vcpu-quota"].fix == "allow ec2:DescribeInstanceTypes and servicequotas:GetServiceQuota"
    assert {c.name for c in report.checks if c.ok} >= {"aws-account", "aws-zone", "aws-bootstrap", "aws-eks-version"}


def test_preflight_input_errors_exit_2(fresh: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preflight", "nope", "--env-dir", str(fresh.env_dir)]) == 2
    fresh.edit(lambda d: d.pop("ci"))
    assert main(["preflight", "staging", "--env-dir", str(fresh.env_dir), "--cloud", "aws"]) == 2
    assert "staging: ci: missing" in capsys.readouterr().err
    assert main(["preflight", "staging", "--env-dir", str(fresh.env_dir), "--cloud", "aws", "--no-github", "-f", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## preflight staging") and "| ✅ | `aws-account` |" in out


def test_in_actions_the_oidc_template_is_skipped_when_the_token_cannot_read_it(fresh: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """GITHUB_TOKEN cannot be given Administration (read): the endpoint answers 404 to it. In a
    workflow that is a skip with the reason (a wrong template fails closed); elsewhere a failure."""
    fresh.github.oidc_sub = None  # the fake answers 404, as GitHub does to a token without the permission
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    report = preflight(with_connection(fresh.env()), file=fresh.file, clouds=())
    check = next(c for c in report.checks if c.name == "github-oidc-sub")
    assert check.ok is None and "Administration: read" in check.detail and "fails closed" in check.detail
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    report = preflight(with_connection(fresh.env()), file=fresh.file, clouds=())
    assert next(c for c in report.checks if c.name == "github-oidc-sub").ok is False


def test_gpu_quota_counts_the_zones_gke_uses(fresh: World) -> None:
    """A regional pool without named zones runs in GKE's three default zones, not in all four of
    us-central1: the quota asked for is max 3 x 3 zones x 1 GPU = 9 (the zone rule of the summary,
    the cost and the alarms, environments.facts.gke_zone_count)."""
    fresh.edit(_set("gcp.cluster.gpu_node_pools.0.zones", []))
    report = preflight(fresh.env(), file=fresh.file, clouds=("gcp",), github=False)
    gpu = next(c for c in report.checks if c.name == "gcp-gpu-quota" and c.subject.startswith("PREEMPTIBLE_NVIDIA_L4_GPUS"))
    assert gpu.detail == "9 GPUs at max, quota 16"
    next(q for q in _gcp_project(fresh).region_quotas["us-central1"] if q["metric"] == "PREEMPTIBLE_NVIDIA_L4_GPUS").update(limit=8.0)
    failing = preflight(fresh.env(), file=fresh.file, clouds=("gcp",), github=False)
    assert any(c.name == "gcp-gpu-quota" and "request PREEMPTIBLE_NVIDIA_L4_GPUS >= 9" in c.fix for c in failing.failed)
