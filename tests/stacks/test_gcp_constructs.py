"""GCP constructs, each synthesized alone with cdktf's Testing helpers."""

from __future__ import annotations

import pytest
from cdktf import TerraformStack

from environments.schema import Environment
from stacks.gcp.budget import Budget as GcpBudget
from stacks.gcp.build import BuildIdentity, Trigger
from stacks.gcp.cluster import Cluster
from stacks.gcp.kms import ArtifactRegistryKey
from stacks.gcp.network import Network
from stacks.gcp.node_pools import NodePool
from stacks.gcp.registry import Registry
from tests.stacks.helpers import one, resources, synth_construct

PROJECT_NUMBER = "123456789012"


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
    # Dataplane V2 enforces NetworkPolicy; the Calico add-on stays off
    assert cluster["network_policy"] == {"enabled": False}
    assert cluster["binary_authorization"]["evaluation_mode"] == "PROJECT_SINGLETON_POLICY_ENFORCE"
    assert cluster["enable_intranode_visibility"] is True
    assert cluster["authenticator_groups_config"]["security_group"] == "gke-security-groups@example.com"
    # the short-lived default pool runs as the node account, never the Compute default (Editor)
    assert cluster["node_config"]["service_account"].startswith("${google_service_account.")
    assert cluster["node_config"]["workload_metadata_config"]["mode"] == "GKE_METADATA"
    assert cluster["lifecycle"]["ignore_changes"] == ["node_config"]
    firewall = one(synth, "google_compute_firewall")
    assert (firewall["direction"], firewall["priority"], firewall["deny"]) == ("INGRESS", 65534, [{"protocol": "all"}])


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
    synth = synth_construct(
        lambda s: Registry(s, "ar", env=env, cfg=cfg, key=ArtifactRegistryKey(s, "kms", env=env, project_number=PROJECT_NUMBER))
    )
    repo = one(synth, "google_artifact_registry_repository")
    policies = {p["id"]: p for p in repo["cleanup_policies"]}
    assert policies["keep-recent"]["most_recent_versions"]["keep_count"] == cfg.keep_recent
    assert policies["delete-untagged"]["condition"] == {"tag_state": "UNTAGGED", "older_than": f"{cfg.delete_untagged_after_days * 86400}s"}
    assert repo["docker_config"]["immutable_tags"] is True
    assert repo["vulnerability_scanning_config"]["enablement_config"] == "INHERITED"


def test_artifact_registry_is_encrypted_with_a_rotating_key_its_agent_may_use(environments: dict[str, Environment]) -> None:
    env = environments["staging"]
    assert env.gcp
    synth = synth_construct(
        lambda s: Registry(
            s, "ar", env=env, cfg=env.gcp.registries[0], key=ArtifactRegistryKey(s, "kms", env=env, project_number=PROJECT_NUMBER)
        )
    )  # type: ignore[union-attr]
    repo, key = (one(synth, t) for t in ("google_artifact_registry_repository", "google_kms_crypto_key"))
    grants = resources(synth, "google_kms_crypto_key_iam_member")
    assert repo["kms_key_name"].startswith("${google_kms_crypto_key.") and repo["kms_key_name"].endswith(".id}")
    # the repository waits for both grants: created earlier, Artifact Registry cannot use the key
    assert sum(d.startswith("google_kms_crypto_key_iam_member.") for d in repo["depends_on"]) == 2
    assert key["rotation_period"] == "7776000s" and key["lifecycle"]["prevent_destroy"] is True
    assert {g["role"] for g in grants} == {"roles/cloudkms.cryptoKeyEncrypterDecrypter"}
    # the service agent (made by `infra bootstrap`) and the account that creates the repository
    assert {g["member"] for g in grants} == {
        f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-artifactregistry.iam.gserviceaccount.com",
        f"serviceAccount:{env.gcp_service_account('deploy')}",
    }


@pytest.mark.parametrize("name", ["dev", "production"])
def test_gcp_budget_alerts_each_recipient_at_each_threshold(environments: dict[str, Environment], name: str) -> None:
    env = environments[name]
    synth = synth_construct(lambda s: GcpBudget(s, "budget", env=env, project_number=PROJECT_NUMBER))
    budget = one(synth, "google_billing_budget")
    assert budget["billing_account"] == env.gcp.billing_account  # type: ignore[union-attr]
    assert float(budget["amount"]["specified_amount"]["units"]) == env.budget_usd("gcp")
    rules = [(r["threshold_percent"], r.get("spend_basis", "CURRENT_SPEND")) for r in budget["threshold_rules"]]
    assert rules == [(p / 100, "CURRENT_SPEND") for p in env.budget.thresholds_pct] + [(1.0, "FORECASTED_SPEND")]
    channels = resources(synth, "google_monitoring_notification_channel")
    assert sorted(c["labels"]["email_address"] for c in channels) == sorted(env.budget.recipients)
    assert len(budget["all_updates_rule"]["monitoring_notification_channels"]) == len(env.budget.recipients)
    assert budget["budget_filter"]["projects"] == [f"projects/{PROJECT_NUMBER}"]


def test_cloud_build_trigger_follows_the_environment_branch(environments: dict[str, Environment]) -> None:
    env = environments["staging"]
    assert env.gcp

    def build(s: TerraformStack) -> None:
        identity = BuildIdentity(s, "id", env=env)
        Trigger(s, "trigger", env=env, cfg=env.gcp.build_triggers[0], identity=identity)  # type: ignore[union-attr]

    synth = synth_construct(build)
    trigger = one(synth, "google_cloudbuild_trigger")
    # a 2nd-generation repository under the region's connection (1st gen needs a console-made mapping)
    assert "github" not in trigger
    assert trigger["repository_event_config"]["push"]["branch"] == "^staging$"
    repository = one(synth, "google_cloudbuildv2_repository")
    assert repository["parent_connection"] == "projects/mlp-staging-4410/locations/us-central1/connections/github"
    assert repository["remote_uri"] == "https://github.com/acme-ml/ml-platform.git"
    assert trigger["repository_event_config"]["repository"].startswith("${google_cloudbuildv2_repository.")
    # the deploy service account may act as the build service account the trigger runs as
    act_as = one(synth, "google_service_account_iam_member")
    assert (act_as["role"], act_as["member"]) == ("roles/iam.serviceAccountUser", f"serviceAccount:{env.gcp_service_account('deploy')}")
    assert any(d.startswith("google_service_account_iam_member.") for d in trigger["depends_on"])
    assert trigger["filename"] == "cloudbuild.yaml"
    assert trigger["substitutions"]["_IMAGE_REPOSITORY"] == "us-central1-docker.pkg.dev/mlp-staging-4410/mlp-staging-model-server"
    assert one(synth, "google_artifact_registry_repository_iam_member")["role"] == "roles/artifactregistry.writer"
