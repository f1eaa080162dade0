"""What made the first apply on an empty account or project fail, each held in the synthesized JSON
(docs/first-deploy.md keeps the audit table with the sources)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.layout import SERVING_NAMESPACE, SERVING_SERVICE_ACCOUNT
from environments import facts
from environments.schema import Environment
from infra.synthesized.paths import flatten
from infra.synthesized.reader import Stack, list_stacks, load_stack

ENVS = ["dev", "staging", "production"]


def _stack(synth_out: Path, name: str) -> Stack:
    return load_stack(synth_out / "stacks" / name / "cdk.tf.json")


def _policies(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for r in stack.resources:
        for key in ("policy", "assume_role_policy"):
            text = r.values.get(key)
            if isinstance(text, str) and text.lstrip().startswith("{"):
                out.append((f"{r.path}.{key}", json.loads(text)))
    return out


@pytest.mark.parametrize("name", ENVS)
def test_no_resource_policy_names_a_role_of_another_account(synth_out: Path, environments: dict[str, Environment], name: str) -> None:
    """KMS and S3 reject a policy naming a role that does not exist yet; the other account is named instead."""
    env = environments[name]
    assert env.aws is not None
    for stack_name in (name, f"{name}-registries"):
        for where, policy in _policies(_stack(synth_out, stack_name)):
            for st in policy.get("Statement", []):
                principal = st.get("Principal")
                aws = principal.get("AWS") if isinstance(principal, dict) else None
                for arn in [aws] if isinstance(aws, str) else aws or []:
                    if f":{env.aws.account_id}:" not in arn:
                        assert arn.endswith(":root"), f"{where}: {arn}"
                        assert st["Condition"]["ArnEquals"]["aws:PrincipalArn"].startswith(arn.removesuffix("root"))


@pytest.mark.parametrize("name", ENVS)
def test_the_cluster_has_access_entries_and_no_creator_grant(synth_out: Path, environments: dict[str, Environment], name: str) -> None:
    env, stack = environments[name], _stack(synth_out, name)
    (cluster,) = stack.of_type("aws_eks_cluster")
    assert cluster.get("access_config.authentication_mode") == "API"
    assert cluster.get("access_config.bootstrap_cluster_creator_admin_permissions") is False  # ForceNew: chosen at creation
    assert cluster.get("bootstrap_self_managed_addons") is False  # ForceNew too
    entries = {r.get("principal_arn") for r in stack.of_type("aws_eks_access_entry")}
    assert entries == {env.github_role_arn("deploy"), env.github_role_arn("plan"), env.break_glass_role_arn()}
    policies = {r.path.rsplit("/", 1)[-1]: r for r in stack.of_type("aws_eks_access_policy_association")}
    assert policies["access-plan-view"].get("policy_arn").endswith("/AmazonEKSAdminViewPolicy")  # reads Helm's Secrets
    assert policies["access-plan-view"].get("access_scope.namespaces") == ["kube-system", SERVING_NAMESPACE]
    for admin in ("access-deploy-admin", "access-break-glass-admin"):
        assert policies[admin].get("policy_arn").endswith("/AmazonEKSClusterAdminPolicy")


@pytest.mark.parametrize("name", ENVS)
def test_core_add_ons_are_managed_and_ordered_around_the_nodes(synth_out: Path, name: str) -> None:
    stack = _stack(synth_out, name)
    addons = {r.get("addon_name"): r for r in stack.of_type("aws_eks_addon")}
    assert {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "amazon-cloudwatch-observability"} <= set(addons)
    for core in ("vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"):
        assert addons[core].get("addon_version", "").startswith("${data.aws_eks_addon_version.")  # follows the cluster version
    before = {f"aws_eks_addon.{addons[n].name}" for n in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")}
    groups = {f"aws_eks_node_group.{g.name}" for g in stack.of_type("aws_eks_node_group")}
    for group in stack.of_type("aws_eks_node_group"):
        assert before <= set(group.get("depends_on")), group.path  # a node without a CNI stays NotReady
    assert set(addons["coredns"].get("depends_on")) & groups
    assert groups <= set(addons["amazon-cloudwatch-observability"].get("depends_on"))


@pytest.mark.parametrize("name", ENVS)
def test_every_role_carries_the_permissions_boundary(synth_out: Path, environments: dict[str, Environment], name: str) -> None:
    env = environments[name]
    roles = [r for s in list_stacks(synth_out) if s.split("-")[0] == name for r in _stack(synth_out, s).of_type("aws_iam_role")]
    assert roles
    assert {r.get("permissions_boundary") for r in roles} == {env.permissions_boundary_arn()}


def test_no_credential_is_read_into_a_plan_or_the_state(synth_out: Path) -> None:
    """The GKE Helm provider authenticates with an exec plugin: no access token data source anywhere."""
    for name in list_stacks(synth_out):
        raw = _stack(synth_out, name).raw
        assert "google_client_config" not in raw.get("data", {}), name
        assert not [p for p in flatten(raw) if p.endswith(".token") or "access_token" in p], name
    (gke,) = [p for p in _stack(synth_out, "staging-workloads").raw["provider"]["helm"] if p.get("alias") == "gke"]
    kube = gke["kubernetes"]
    assert kube["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert "dns_endpoint_config" in kube["host"] and "cluster_ca_certificate" not in kube


@pytest.mark.parametrize("name", ENVS)
def test_the_gke_api_is_reached_through_its_dns_endpoint(synth_out: Path, name: str) -> None:
    (cluster,) = _stack(synth_out, name).of_type("google_container_cluster")
    assert cluster.get("control_plane_endpoints_config.dns_endpoint_config.allow_external_traffic") is True
    assert "google_service_account_iam_member." in " ".join(cluster.get("depends_on"))  # the deploy account may act as the nodes


@pytest.mark.parametrize("name", ENVS)
def test_the_eks_api_is_reached_from_a_runner_in_the_vpc(synth_out: Path, name: str) -> None:
    stack = _stack(synth_out, name)
    (project,) = stack.of_type("aws_codebuild_project")
    assert project.get("vpc_config.subnets") and project.get("source.auth.type") == "CODECONNECTIONS"
    (webhook,) = stack.of_type("aws_codebuild_webhook")
    assert webhook.get("filter_group")[0]["filter"][0] == {"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}
    (rule,) = stack.of_type("aws_vpc_security_group_ingress_rule")
    assert "cluster_security_group_id" in rule.get("security_group_id") and rule.get("from_port") == 443


@pytest.mark.parametrize("name", ENVS)
def test_the_model_server_reads_its_registry_as_its_own_service_account(synth_out: Path, name: str) -> None:
    stack = _stack(synth_out, name)
    (grant,) = [r for r in stack.of_type("google_storage_bucket_iam_member") if r.path.endswith("serving-reads")]
    assert grant.get("member").endswith(f"/subject/ns/{SERVING_NAMESPACE}/sa/{SERVING_SERVICE_ACCOUNT}")
    assert grant.get("member").startswith("principal://iam.googleapis.com/projects/${data.google_project.")
    assert any(d.startswith("google_container_cluster.") for d in grant.get("depends_on"))  # the identity pool exists then
    (pod_identity,) = [r for r in stack.of_type("aws_eks_pod_identity_association") if r.path.endswith("serving-identity")]
    assert (pod_identity.get("namespace"), pod_identity.get("service_account")) == (SERVING_NAMESPACE, SERVING_SERVICE_ACCOUNT)
    releases = [r for r in _stack(synth_out, f"{name}-workloads").of_type("helm_release") if r.name.startswith("model-server")]
    for release in releases:
        manifests = json.loads(release.get("values")[0])["manifests"]
        accounts = [m for m in manifests if m["kind"] == "ServiceAccount"]
        assert [a["metadata"]["name"] for a in accounts] == [SERVING_SERVICE_ACCOUNT]


@pytest.mark.parametrize("name", ENVS)
def test_images_live_in_a_stack_applied_before_anything_runs_them(synth_out: Path, environments: dict[str, Environment], name: str) -> None:
    env = environments[name]
    assert env.aws is not None
    registries = {r.get("name") for r in _stack(synth_out, f"{name}-registries").of_type("aws_ecr_repository")}
    for fn in _stack(synth_out, name).of_type("aws_lambda_function"):
        repository = fn.get("image_uri").split("/", 1)[1].split(":")[0].split("@")[0]
        assert repository in registries
    manifest = json.loads((synth_out / "manifest.json").read_text())
    assert manifest["stacks"][name]["dependencies"] == [f"{name}-registries"]


@pytest.mark.parametrize("name", ENVS)
def test_kubernetes_and_the_autoscaler_are_in_support(synth_out: Path, environments: dict[str, Environment], name: str) -> None:
    cluster = environments[name].aws.cluster  # type: ignore[union-attr]
    assert cluster is not None
    until = facts.eks_kubernetes_versions()[cluster.kubernetes_version].support_until(cluster.support_type)
    assert (until - date.today()).days > facts.eks_support_margin_days()
    (eks,) = _stack(synth_out, name).of_type("aws_eks_cluster")
    assert eks.get("version") == cluster.kubernetes_version
    (autoscaler,) = [r for r in _stack(synth_out, f"{name}-workloads").of_type("helm_release") if r.name == "cluster-autoscaler"]
    assert json.loads(autoscaler.get("values")[0])["image"]["tag"].startswith(f"v{cluster.kubernetes_version}.")


@pytest.mark.parametrize("name", ENVS)
def test_the_plan_identity_can_refresh_the_gke_release_and_nothing_more(
    synth_out: Path, environments: dict[str, Environment], name: str
) -> None:
    """Drift plans the workloads stack with the plan identity: the Helm provider reads the release
    from its Secrets. On GKE that needs RBAC for the plan account (its IAM roles reach no object);
    on EKS the plan role's access entry (AmazonEKSAdminViewPolicy) already reads them."""
    env = environments[name]
    releases = {r.name: r for r in _stack(synth_out, f"{name}-workloads").of_type("helm_release")}
    gke = json.loads(releases["model-server-gke"].get("values")[0])["manifests"]
    role = next(m for m in gke if m["kind"] == "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]  # no writes, this namespace
    binding = next(m for m in gke if m["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": env.gcp_service_account("plan")}]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == SERVING_NAMESPACE
    eks = json.loads(releases["model-server-eks"].get("values")[0])["manifests"]
    assert not [m for m in eks if m["kind"] in ("Role", "RoleBinding")]
