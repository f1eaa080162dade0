"""GCP constructs, each synthesized alone with cdktf's Testing helpers."""

from __future__ import annotations

from cdktf import TerraformStack

from environments.schema import Environment
from stacks.gcp.build import BuildIdentity, Trigger
from stacks.gcp.cluster import Cluster
from stacks.gcp.network import Network
from stacks.gcp.node_pools import NodePool
from stacks.gcp.registry import Registry
from tests.stacks.helpers import one, resources, synth_construct


def _cluster_with_gpu_pool(s: TerraformStack, env: Environment) -> None:
    assert env.gcp and env.gcp.cluster
    cluster = Cluster(s, "gke", env=env, network=Network(s, "net", env=env))
    pool = env.gcp.cluster.gpu_node_pools[0]
    NodePool(
        s,
        "gpu",
        env=env,
        cluster=cluster.cluster,
        service_account=cluster.node_service_account.email,
        name=env.gke_gpu_pool_name("l4"),
        cfg=pool,
    )


def test_gke_cluster_is_private_with_workload_identity_and_network_policy(environments: dict[str, Environment]) -> None:
    env = environments["staging"]
    synth = synth_construct(lambda s: _cluster_with_gpu_pool(s, env))
    cluster = one(synth, "google_container_cluster")
    assert cluster["private_cluster_config"]["enable_private_nodes"] is True
    assert cluster["private_cluster_config"]["master_ipv4_cidr_block"] == "172.16.0.16/28"
    assert cluster["workload_identity_config"]["workload_pool"] == "mlp-staging-4410.svc.id.goog"
    assert cluster["datapath_provider"] == "ADVANCED_DATAPATH"
    assert cluster["release_channel"]["channel"] == "REGULAR"
    assert cluster["remove_default_node_pool"] is True
    assert cluster["master_authorized_networks_config"]["cidr_blocks"] == [{"cidr_block": "10.0.0.0/8", "display_name": "corp-vpn"}]


def test_gke_gpu_pool_has_accelerator_driver_taint_and_scales_from_zero(environments: dict[str, Environment]) -> None:
    env = environments["dev"]
    synth = synth_construct(lambda s: _cluster_with_gpu_pool(s, env))
    pool = next(p for p in resources(synth, "google_container_node_pool") if p["name"] == "mlp-dev-gpu-l4")
    node = pool["node_config"]
    assert node["guest_accelerator"] == [
        {"type": "nvidia-l4", "count": 1, "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"}}
    ]
    assert node["machine_type"] == "g2-standard-8"
    assert node["spot"] is True
    assert node["taint"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert node["workload_metadata_config"]["mode"] == "GKE_METADATA"
    assert node["shielded_instance_config"]["enable_secure_boot"] is True
    assert pool["autoscaling"]["min_node_count"] == 0
    assert pool["autoscaling"]["location_policy"] == "ANY"
    assert pool["node_locations"] == ["us-central1-a", "us-central1-c"]
    assert pool["management"] == {"auto_repair": True, "auto_upgrade": True}


def test_node_service_account_has_only_the_node_roles(environments: dict[str, Environment]) -> None:
    env = environments["dev"]
    synth = synth_construct(lambda s: _cluster_with_gpu_pool(s, env))
    roles = {m["role"] for m in resources(synth, "google_project_iam_member")}
    assert roles == {
        "roles/logging.logWriter",
        "roles/monitoring.metricWriter",
        "roles/monitoring.viewer",
        "roles/stackdriver.resourceMetadata.writer",
        "roles/artifactregistry.reader",
    }


def test_artifact_registry_cleanup_keeps_recent_and_deletes_untagged(environments: dict[str, Environment]) -> None:
    env = environments["dev"]
    assert env.gcp
    cfg = env.gcp.registries[0]
    repo = one(synth_construct(lambda s: Registry(s, "ar", env=env, cfg=cfg)), "google_artifact_registry_repository")
    policies = {p["id"]: p for p in repo["cleanup_policies"]}
    assert policies["keep-recent"]["most_recent_versions"]["keep_count"] == cfg.keep_recent
    assert policies["delete-untagged"]["condition"] == {"tag_state": "UNTAGGED", "older_than": f"{cfg.delete_untagged_after_days * 86400}s"}
    assert repo["docker_config"]["immutable_tags"] is True


def test_cloud_build_trigger_follows_the_environment_branch(environments: dict[str, Environment]) -> None:
    env = environments["staging"]
    assert env.gcp

    def build(s: TerraformStack) -> None:
        registry = Registry(s, "ar", env=env, cfg=env.gcp.registries[0])  # type: ignore[union-attr]
        identity = BuildIdentity(s, "id", env=env, registries=[registry])
        Trigger(s, "trigger", env=env, cfg=env.gcp.build_triggers[0], identity=identity, registry=registry)  # type: ignore[union-attr]

    synth = synth_construct(build)
    trigger = one(synth, "google_cloudbuild_trigger")
    assert trigger["github"]["push"]["branch"] == "^staging$"
    assert trigger["filename"] == "cloudbuild.yaml"
    assert trigger["substitutions"]["_IMAGE_REPOSITORY"] == "us-central1-docker.pkg.dev/mlp-staging-4410/mlp-staging-model-server"
    assert one(synth, "google_artifact_registry_repository_iam_member")["role"] == "roles/artifactregistry.writer"
