"""GKE: a private, VPC-native regional cluster with Workload Identity, Dataplane V2 (network policy),
shielded nodes, a release channel, Binary Authorization, intranode visibility and Google Groups for
RBAC; a least-privilege node service account; the system pool.

GPU drivers are installed by GKE itself (``gpu_driver_installation_config``) and GKE runs the
device plugin, so GKE GPU pools need nothing in the workloads stack.
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_google.container_cluster import (
    ContainerCluster,
    ContainerClusterAuthenticatorGroupsConfig,
    ContainerClusterBinaryAuthorization,
    ContainerClusterControlPlaneEndpointsConfig,
    ContainerClusterControlPlaneEndpointsConfigDnsEndpointConfig,
    ContainerClusterIpAllocationPolicy,
    ContainerClusterMasterAuth,
    ContainerClusterMasterAuthClientCertificateConfig,
    ContainerClusterMasterAuthorizedNetworksConfig,
    ContainerClusterMasterAuthorizedNetworksConfigCidrBlocks,
    ContainerClusterNetworkPolicy,
    ContainerClusterNodeConfig,
    ContainerClusterNodeConfigShieldedInstanceConfig,
    ContainerClusterNodeConfigWorkloadMetadataConfig,
    ContainerClusterPrivateClusterConfig,
    ContainerClusterReleaseChannel,
    ContainerClusterWorkloadIdentityConfig,
)
from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
from cdktf_cdktf_provider_google.project_service import ProjectService
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from constructs import Construct

from environments.schema import Environment
from stacks.gcp.network import PODS_RANGE, SERVICES_RANGE, Network
from stacks.gcp.node_pools import NodePool

NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)


class NodeServiceAccount(Construct):
    """The identity GKE nodes run as: logs, metrics and image pulls, nothing else."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        self.account = ServiceAccount(self, "account", account_id=env.resource_name("gke-nodes"), display_name=f"GKE nodes of {env.name}")
        for role in NODE_ROLES:
            ProjectIamMember(
                self,
                role.removeprefix("roles/").replace(".", "-"),
                project=env.gcp.project_id,
                role=role,
                member=f"serviceAccount:{self.account.email}",
            )
        self.email = self.account.email
        # creating a cluster or node pool that runs as this account needs iam.serviceAccounts.actAs on it
        # (GKE access control: "Service Account User role on the user-managed service account")
        self.act_as = ServiceAccountIamMember(
            self,
            "deploy-acts-as",
            service_account_id=self.account.name,
            role="roles/iam.serviceAccountUser",
            member=f"serviceAccount:{env.gcp_service_account('deploy')}",
        )


class Cluster(Construct):
    """Exposes ``cluster`` and ``node_service_account``."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, network: Network) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None and env.gcp.cluster is not None
        cfg = env.gcp.cluster
        self.node_service_account = NodeServiceAccount(self, "nodes", env=env)
        # the cluster evaluates the project's Binary Authorization policy, whose API must be on first
        binauthz = (
            [ProjectService(self, "binauthz-api", service="binaryauthorization.googleapis.com", disable_on_destroy=False)]
            if cfg.binary_authorization
            else None
        )
        self.cluster = ContainerCluster(
            self,
            "cluster",
            name=env.resource_name("gke"),
            location=env.gcp.region,
            network=network.network.id,
            subnetwork=network.subnet.id,
            remove_default_node_pool=True,
            initial_node_count=1,
            deletion_protection=cfg.deletion_protection,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=ContainerClusterIpAllocationPolicy(
                cluster_secondary_range_name=PODS_RANGE, services_secondary_range_name=SERVICES_RANGE
            ),
            private_cluster_config=ContainerClusterPrivateClusterConfig(
                enable_private_nodes=True, enable_private_endpoint=cfg.private_endpoint, master_ipv4_cidr_block=cfg.master_cidr
            )
            if cfg.private_nodes
            else None,
            # the DNS-based control-plane endpoint: reached from anywhere (GitHub-hosted runners included),
            # authorized by IAM (container.clusters.connect) before Kubernetes RBAC; the IP endpoints keep
            # their authorized networks. google provider 6.11.0+ (CHANGELOG, #20193); GKE docs,
            # "About the DNS-based endpoint"
            control_plane_endpoints_config=ContainerClusterControlPlaneEndpointsConfig(
                dns_endpoint_config=ContainerClusterControlPlaneEndpointsConfigDnsEndpointConfig(allow_external_traffic=True)
            ),
            master_authorized_networks_config=ContainerClusterMasterAuthorizedNetworksConfig(
                cidr_blocks=[
                    ContainerClusterMasterAuthorizedNetworksConfigCidrBlocks(cidr_block=n.cidr, display_name=n.name)
                    for n in cfg.master_authorized_networks
                ]
            ),
            release_channel=ContainerClusterReleaseChannel(channel=cfg.release_channel),
            workload_identity_config=ContainerClusterWorkloadIdentityConfig(workload_pool=f"{env.gcp.project_id}.svc.id.goog")
            if cfg.workload_identity
            else None,
            # Dataplane V2 enforces NetworkPolicy itself; the Calico add-on (network_policy) stays off
            datapath_provider="ADVANCED_DATAPATH" if cfg.network_policy else "LEGACY_DATAPATH",
            network_policy=ContainerClusterNetworkPolicy(enabled=False),
            enable_shielded_nodes=True,
            enable_intranode_visibility=cfg.intranode_visibility,
            binary_authorization=ContainerClusterBinaryAuthorization(evaluation_mode="PROJECT_SINGLETON_POLICY_ENFORCE")
            if cfg.binary_authorization
            else None,
            authenticator_groups_config=ContainerClusterAuthenticatorGroupsConfig(security_group=cfg.rbac_security_group)
            if cfg.rbac_security_group
            else None,
            # the default pool lives only until remove_default_node_pool deletes it; while it does, it runs
            # as the least-privilege node account with Workload Identity metadata, never as the Compute
            # default account (project Editor)
            node_config=ContainerClusterNodeConfig(
                service_account=self.node_service_account.email,
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                workload_metadata_config=ContainerClusterNodeConfigWorkloadMetadataConfig(mode="GKE_METADATA"),
                shielded_instance_config=ContainerClusterNodeConfigShieldedInstanceConfig(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
            ),
            lifecycle=TerraformResourceLifecycle(ignore_changes=["node_config"]),
            depends_on=[*(binauthz or []), self.node_service_account.act_as],
            master_auth=ContainerClusterMasterAuth(
                client_certificate_config=ContainerClusterMasterAuthClientCertificateConfig(issue_client_certificate=False)
            ),
        )
        NodePool(
            self,
            "system",
            env=env,
            cluster=self.cluster,
            service_account=self.node_service_account.email,
            name=env.resource_name("system"),
            cfg=cfg.system_node_pool,
        )
