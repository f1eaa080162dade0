"""GKE node pools: shielded, Workload-Identity metadata, autoscaled per zone; GPU pools add the
accelerator with GKE-managed driver installation, their taints and labels."""

from __future__ import annotations

from cdktf_cdktf_provider_google.container_cluster import ContainerCluster
from cdktf_cdktf_provider_google.container_node_pool import (
    ContainerNodePool,
    ContainerNodePoolAutoscaling,
    ContainerNodePoolManagement,
    ContainerNodePoolNodeConfig,
    ContainerNodePoolNodeConfigGuestAccelerator,
    ContainerNodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfig,
    ContainerNodePoolNodeConfigShieldedInstanceConfig,
    ContainerNodePoolNodeConfigTaint,
    ContainerNodePoolNodeConfigWorkloadMetadataConfig,
)
from constructs import Construct

from environments.schema import Environment, GkeGpuNodePool, GkeNodePool, Taint

GKE_TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}


def gke_taints(taints: list[Taint]) -> list[ContainerNodePoolNodeConfigTaint]:
    return [ContainerNodePoolNodeConfigTaint(key=t.key, value=t.value, effect=GKE_TAINT_EFFECT[t.effect]) for t in taints]


class NodePool(Construct):
    """Exposes ``pool``, named ``name`` (already the full resource name). A :class:`GkeGpuNodePool` config adds its accelerator."""

    def __init__(
        self, scope: Construct, id_: str, *, env: Environment, cluster: ContainerCluster, service_account: str, name: str, cfg: GkeNodePool
    ) -> None:
        super().__init__(scope, id_)
        accelerators = None
        zones = None
        if isinstance(cfg, GkeGpuNodePool):
            accelerators = [
                ContainerNodePoolNodeConfigGuestAccelerator(
                    type=cfg.accelerator.type,
                    count=cfg.accelerator.count,
                    gpu_driver_installation_config=ContainerNodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfig(
                        gpu_driver_version=cfg.accelerator.driver
                    ),
                )
            ]
            zones = list(cfg.zones) or None
        self.pool = ContainerNodePool(
            self,
            "pool",
            name=name,
            cluster=cluster.id,
            location=cluster.location,
            node_locations=zones,
            autoscaling=ContainerNodePoolAutoscaling(
                min_node_count=cfg.min, max_node_count=cfg.max, location_policy="ANY" if cfg.spot else "BALANCED"
            ),
            management=ContainerNodePoolManagement(auto_repair=True, auto_upgrade=True),
            node_config=ContainerNodePoolNodeConfig(
                machine_type=cfg.machine_type,
                disk_size_gb=cfg.disk_gb,
                disk_type="pd-balanced",
                spot=cfg.spot,
                service_account=service_account,
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                labels=dict(cfg.labels),
                resource_labels=env.all_tags,
                taint=gke_taints(cfg.taints),
                guest_accelerator=accelerators,
                workload_metadata_config=ContainerNodePoolNodeConfigWorkloadMetadataConfig(mode="GKE_METADATA"),
                shielded_instance_config=ContainerNodePoolNodeConfigShieldedInstanceConfig(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
            ),
        )
