"""Per-environment expectations over the synthesized JSON: counts derived from the environment
files, and the values that must hold. Resources are found by type and name, never by hash."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from app.layout import GPU_GROUP_LABEL
from environments import facts
from environments.schema import Environment
from environments.tagging import GOOGLE_LABELS_AS, KNOWN_TAGGABLE, NOT_TAGGABLE
from infra.synthesized.reader import Stack, list_stacks, load_stack

ENVS = ["dev", "staging", "production"]


def _stack(synth_out: Path, name: str) -> Stack:
    return load_stack(synth_out / "stacks" / name / "cdk.tf.json")


def test_one_stack_per_environment_named_after_it(synth_out: Path, environments: dict[str, Environment]) -> None:
    stacks = set(list_stacks(synth_out))
    assert set(environments) <= stacks
    workloads = {f"{e.name}-workloads" for e in environments.values() if e.aws and e.aws.cluster}
    registries = {f"{e.name}-registries" for e in environments.values() if (e.aws and e.aws.registries) or (e.gcp and e.gcp.registries)}
    assert stacks == set(environments) | workloads | registries
    manifest = json.loads((synth_out / "manifest.json").read_text())
    for name in registries:  # the environment stack is applied after the registries its images are pushed to
        assert manifest["stacks"][name.removesuffix("-registries")]["dependencies"] == [name]


@pytest.mark.parametrize("name", ENVS)
def test_resource_counts_follow_the_environment_file(synth_out: Path, environments: dict[str, Environment], name: str) -> None:
    env = environments[name]
    stack = _stack(synth_out, name)
    registries = _stack(synth_out, f"{name}-registries")
    assert env.aws and env.aws.cluster and env.gcp and env.gcp.cluster
    expected = {
        "aws_vpc": 1,
        "aws_subnet": 2 * len(env.aws.network.zones),
        "aws_nat_gateway": len(env.aws.network.zones) if env.aws.network.nat == "per_az" else 1,
        "aws_kms_key": 1 + (1 if env.models and env.models.replica_region else 0),  # the replica's key lives in its region
        "aws_s3_bucket": (1 + (1 if env.models.replica_region else 0)) if env.models else 0,
        "google_storage_bucket": 2 if env.models else 0,  # the registry and its usage-logs bucket
        "aws_eks_cluster": 1,
        "aws_eks_node_group": 1 + len(env.aws.cluster.gpu_node_groups),
        "aws_lambda_function": len(env.aws.endpoints),
        "aws_lambda_function_url": len(env.aws.endpoints),
        "google_compute_network": 1,
        "google_compute_router_nat": 1 if env.gcp.network.nat else 0,
        "google_container_cluster": 1,
        "google_container_node_pool": 1 + len(env.gcp.cluster.gpu_node_pools),
        "google_cloudbuild_trigger": len(env.gcp.build_triggers),
    }
    actual = {rtype: len(stack.of_type(rtype)) for rtype in expected}
    assert actual == expected
    in_registries = {
        "aws_ecr_repository": len(env.aws.registries),
        "aws_ecr_lifecycle_policy": len(env.aws.registries),
        "aws_kms_key": 1,  # the registries' own key
        "google_artifact_registry_repository": len(env.gcp.registries),
        "aws_lambda_function": 0,
        "google_container_cluster": 0,
    }
    assert {rtype: len(registries.of_type(rtype)) for rtype in in_registries} == in_registries


@pytest.mark.parametrize("name", ENVS)
def test_gpu_groups_use_nvidia_amis_and_gpu_pools_have_accelerators(synth_out: Path, name: str) -> None:
    stack = _stack(synth_out, name)
    gpu_groups = [g for g in stack.of_type("aws_eks_node_group") if "-ng-system" not in g.get("node_group_name")]
    assert gpu_groups
    assert all(g.get("ami_type").endswith("_NVIDIA") for g in gpu_groups)
    assert all(g.get("taint") for g in gpu_groups)
    gpu_pools = [p for p in stack.of_type("google_container_node_pool") if p.get("node_config.guest_accelerator")]
    assert gpu_pools and all(p.get("node_config.taint") for p in gpu_pools)


@pytest.mark.parametrize("name", ["staging", "production"])
def test_private_endpoints_and_iam_function_urls_where_declared(synth_out: Path, name: str) -> None:
    stack = _stack(synth_out, name)
    assert stack.of_type("aws_eks_cluster")[0].get("vpc_config.endpoint_public_access") is False
    assert {u.get("authorization_type") for u in stack.of_type("aws_lambda_function_url")} == {"AWS_IAM"}


def test_production_gpu_capacity_is_not_spot_only(synth_out: Path) -> None:
    groups = [g for g in _stack(synth_out, "production").of_type("aws_eks_node_group") if g.get("ami_type").endswith("_NVIDIA")]
    assert any(g.get("capacity_type") == "ON_DEMAND" and g.get("scaling_config.min_size") >= 1 for g in groups)


def _taggable(rtype: str) -> str | None:
    """The attribute that carries tags/labels for ``rtype``, asked of its prebuilt binding."""
    if rtype == "terraform_data":  # Terraform's built-in resource: no provider, no tags
        return None
    provider, _, rest = rtype.partition("_")
    module = importlib.import_module(f"cdktf_cdktf_provider_{provider}.{rest}")
    cls = next(c for c in vars(module).values() if getattr(c, "TF_RESOURCE_TYPE", None) == rtype)
    if rtype in GOOGLE_LABELS_AS:
        return GOOGLE_LABELS_AS[rtype]
    for attribute in ("tags", "labels"):
        if hasattr(cls, attribute) and rtype not in NOT_TAGGABLE:
            return attribute
    return None


@pytest.mark.parametrize("name", ENVS)
def test_every_taggable_resource_carries_the_environment_tags(synth_out: Path, environments: dict[str, Environment], name: str) -> None:
    env = environments[name]
    stack = _stack(synth_out, name)
    missing = []
    checked = 0
    for resource in stack.resources:
        attribute = _taggable(resource.type)
        if attribute is None:
            continue
        checked += 1
        tags = resource.values.get(attribute) or {}
        if any(tags.get(k) != v for k, v in env.all_tags.items()):
            missing.append(resource.path)
    assert checked > 30
    assert missing == []


def test_the_policy_knows_every_taggable_type_the_stacks_use(synth_out: Path) -> None:
    """MLP001 finds an untagged resource by its type: the list must hold every taggable type we synthesize."""
    used = {r.type for name in list_stacks(synth_out) for r in _stack(synth_out, name).resources}
    taggable = {rtype for rtype in used if _taggable(rtype) is not None}
    assert taggable, "no taggable resource found"
    assert taggable <= KNOWN_TAGGABLE, f"add to environments/tagging.py KNOWN_TAGGABLE: {sorted(taggable - KNOWN_TAGGABLE)}"
    not_taggable = sorted(rtype for rtype in KNOWN_TAGGABLE if _taggable(rtype) is None)
    assert not_taggable == [], f"KNOWN_TAGGABLE lists types without tags: {not_taggable}"


def test_workloads_stack_installs_device_plugin_for_al2023_groups(synth_out: Path, environments: dict[str, Environment]) -> None:
    stack = _stack(synth_out, "production-workloads")
    releases = {r.name: r for r in stack.of_type("helm_release")}
    assert set(releases) == {"nvidia-device-plugin", "cluster-autoscaler", "model-server-eks", "model-server-gke"}
    values = json.loads(releases["nvidia-device-plugin"].get("values")[0])
    selector = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    # the plugin runs on the GPU groups by the label every node of a group (and its template) carries
    assert selector["matchExpressions"][0] == {"key": GPU_GROUP_LABEL, "operator": "In", "values": ["l4", "l4-burst"]}
    assert values["tolerations"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule", "operator": "Equal"}]
    autoscaler = json.loads(releases["cluster-autoscaler"].get("values")[0])
    assert autoscaler["autoDiscovery"]["clusterName"] == "mlp-production-eks"
    # the autoscaler's minor is the cluster's (facts.yaml: chart and image per Kubernetes minor)
    version = environments["production"].aws.cluster.kubernetes_version  # type: ignore[union-attr]
    chart, image = facts.cluster_autoscaler(version)  # type: ignore[misc]
    assert (releases["cluster-autoscaler"].get("version"), autoscaler["image"]["tag"]) == (chart, image)
    assert image.startswith(f"v{version}.")
    assert stack.backend["s3"]["key"] == "mlp/production/workloads.tfstate"
    manifest = json.loads((synth_out / "manifest.json").read_text())
    assert manifest["stacks"]["production-workloads"]["dependencies"] == ["production"]


def test_without_serving_the_workloads_stack_has_no_model_server(environments: dict[str, Environment]) -> None:
    from cdktf import Testing

    from stacks.environment_stack import EnvironmentStack
    from stacks.workloads_stack import WorkloadsStack

    env = environments["staging"].model_copy(update={"serving": None})
    app = Testing.app()
    stack = WorkloadsStack(app, env, depends_on=EnvironmentStack(app, env))
    synth = json.loads(Testing.synth(stack))
    assert set(synth["resource"]["helm_release"]) == {"nvidia-device-plugin", "cluster-autoscaler"}
    assert "google" not in synth.get("provider", {})  # no Helm on GKE when nothing runs there
