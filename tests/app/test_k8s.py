"""The Kubernetes workload: rendered for every environment and cluster, valid against the
Kubernetes schemas of the cluster's version, consistent with the node pools the environment stack
creates, and deployed by the workloads stack exactly as rendered (one definition)."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest

from app.k8s import GPU_RESOURCE, PORT, GpuPlacement, Toleration, WorkloadSpec, render
from app.layout import SERVING_NAMESPACE
from environments.schema import Cloud, Environment
from infra.synthesized.reader import load_stack
from stacks.serving import release_reader, workload_spec

ENVS = ["dev", "staging", "production"]
CLOUDS: list[Cloud] = ["aws", "gcp"]
# GKE's release channels run current minors; the newest EKS version we allow stands in for them
GKE_SCHEMA_VERSION = "1.35"


def _k8s_version(env: Environment, cloud: Cloud) -> str:
    if cloud == "aws":
        assert env.aws and env.aws.cluster
        return env.aws.cluster.kubernetes_version
    return GKE_SCHEMA_VERSION


def _by_kind(spec: WorkloadSpec) -> dict[str, dict]:  # type: ignore[type-arg]
    return {m["kind"]: m for m in render(spec)}


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("name", ENVS)
def test_manifests_are_valid_for_the_cluster_version(environments: dict[str, Environment], name: str, cloud: Cloud) -> None:
    env = environments[name]
    manifests = render(workload_spec(env, cloud))
    assert [m["kind"] for m in manifests] == ["ServiceAccount", "Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for m in manifests:
        kubernetes_validate.validate(m, _k8s_version(env, cloud), strict=True)
    for m in release_reader(SERVING_NAMESPACE, "plan@example.iam.gserviceaccount.com"):  # the GKE release adds these
        kubernetes_validate.validate(m, _k8s_version(env, cloud), strict=True)


def test_validation_really_rejects_a_broken_manifest(environments: dict[str, Environment]) -> None:
    deployment = _by_kind(workload_spec(environments["dev"], "aws"))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {"cpu": "1"}  # "limits"
    with pytest.raises(kubernetes_validate.ValidationError, match="'limit' was unexpected"):
        kubernetes_validate.validate(deployment, "1.35", strict=True)


@pytest.mark.parametrize("name", ENVS)
def test_probes_resources_and_scaling_follow_the_environment(environments: dict[str, Environment], name: str) -> None:
    env = environments[name]
    assert env.serving
    objects = _by_kind(workload_spec(env, "aws"))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"][0]["containerPort"] == PORT
    assert container["resources"]["requests"]["cpu"] == env.serving.cpu
    assert container["resources"]["limits"]["memory"] == env.serving.memory
    assert container["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    assert container["image"].endswith(f"/{env.resource_name('model-server')}:{env.serving.image_tag}")
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (env.serving.replicas.min, env.serving.replicas.max)
    assert hpa["scaleTargetRef"]["name"] == objects["Deployment"]["metadata"]["name"]
    # the Service and the PDB select exactly the Deployment's pods
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (objects["Service"]["spec"]["selector"], objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
    assert {"environment": name, "team": env.tags["team"], "cost-center": env.tags["cost-center"]}.items() <= pod_labels.items()


def test_cpu_variant_requests_no_gpu(environments: dict[str, Environment]) -> None:
    pod = _by_kind(workload_spec(environments["dev"], "aws"))["Deployment"]["spec"]["template"]["spec"]
    assert GPU_RESOURCE not in pod["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in pod and "tolerations" not in pod


@pytest.mark.parametrize("cloud", CLOUDS)
def test_gpu_variant_lands_on_the_gpu_pool_the_environment_stack_creates(
    environments: dict[str, Environment], synth_out: Path, cloud: Cloud
) -> None:
    env = environments["production"]
    assert env.serving and env.serving.gpu_pool == "l4"
    pod = _by_kind(workload_spec(env, cloud))["Deployment"]["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources["limits"][GPU_RESOURCE] == resources["requests"][GPU_RESOURCE] == "1"
    ((label, value),) = pod["nodeSelector"].items()
    stack = load_stack(synth_out / "stacks" / "production" / "cdk.tf.json")
    if cloud == "aws":
        # the label is on the group's nodes AND on the Cluster Autoscaler's node template (an ASG tag),
        # so a group at zero nodes matches the pending pod and scales up
        (pool,) = [r for r in stack.of_type("aws_eks_node_group") if (r.get("labels") or {}).get(label) == value]
        template = f"k8s.io/cluster-autoscaler/node-template/label/{label}"
        tags = [t for t in stack.of_type("aws_autoscaling_group_tag") if t.get("tag.key") == template and t.get("tag.value") == value]
        assert len(tags) == 1 and f"{pool.address}." in tags[0].get("autoscaling_group_name")
        taint_attr = "taint"
    else:
        assert label == "cloud.google.com/gke-nodepool"  # GKE's own, known to its autoscaler at zero nodes
        (pool,) = [r for r in stack.of_type("google_container_node_pool") if r.get("name") == value]
        taint_attr = "node_config.taint"
    effects = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
    taints = [(t["key"], t["value"], effects[t["effect"]]) for t in pool.get(taint_attr)]
    assert taints, "the GPU pool is tainted"
    tolerated = {(t["key"], t.get("value", ""), t["effect"]) for t in pod["tolerations"]}
    assert set(taints) <= tolerated


def test_a_taint_without_value_is_tolerated_with_exists() -> None:
    spec = WorkloadSpec(
        name="m",
        namespace="n",
        image="i:1",
        version="1",
        min_replicas=1,
        max_replicas=2,
        cpu="100m",
        memory="128Mi",
        gpu=GpuPlacement(node_selector={"pool": "gpu"}, tolerations=(Toleration("nvidia.com/gpu", "", "NoSchedule"),)),
    )
    pod = _by_kind(spec)["Deployment"]["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    kubernetes_validate.validate(_by_kind(spec)["Deployment"], "1.35", strict=True)


def test_replicas_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="replicas"):
        WorkloadSpec(name="m", namespace="n", image="i:1", version="1", min_replicas=3, max_replicas=2, cpu="1", memory="1Gi")


@pytest.mark.parametrize("name", ENVS)
def test_workloads_stack_deploys_exactly_the_rendered_manifests(environments: dict[str, Environment], synth_out: Path, name: str) -> None:
    env = environments[name]
    stack = load_stack(synth_out / "stacks" / f"{name}-workloads" / "cdk.tf.json")
    releases = {r.name: r for r in stack.of_type("helm_release")}
    for cloud, rid in (("aws", "model-server-eks"), ("gcp", "model-server-gke")):
        release = releases[rid]
        # the workload's objects, and on GKE the plan account's read of the release records
        extra = release_reader(SERVING_NAMESPACE, str(env.gcp_service_account("plan"))) if cloud == "gcp" else []
        assert json.loads(release.get("values")[0]) == {"manifests": render(workload_spec(env, cloud)) + extra}  # type: ignore[arg-type]
        chart = synth_out / "stacks" / f"{name}-workloads" / release.get("chart")
        assert (chart / "Chart.yaml").is_file() and (chart / "templates" / "manifests.yaml").is_file()
        assert release.get("atomic") is True
    assert releases["model-server-gke"].get("provider") == "helm.gke"
