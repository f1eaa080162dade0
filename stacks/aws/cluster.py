"""EKS control plane with encrypted secrets, control-plane logs, access entries, managed core add-ons
and a system node group.

* Access: ``authentication_mode = API`` with no grant to whoever created the cluster (that grant is
  not in the state, and ``bootstrap_cluster_creator_admin_permissions`` is ForceNew: it can only be
  chosen at creation). Explicit access entries: the CI deploy role and the break-glass role are
  cluster administrators; the plan role may read (Secrets included: Helm keeps its releases in
  Secrets, which ``AmazonEKSViewPolicy`` does not read) the namespaces the workloads stack manages.
  Source: EKS user guide, access-policy-reference.adoc; hashicorp/terraform-provider-aws
  internal/service/eks/cluster.go (ForceNew, default true).
* Core add-ons: ``bootstrap_self_managed_addons = false`` (also ForceNew, default true: otherwise EKS
  installs vpc-cni, kube-proxy and coredns self-managed, and they never follow a control-plane
  upgrade) and the add-ons as managed add-ons at the default version for the cluster's Kubernetes
  version (``aws_eks_addon_version``), so an upgrade of ``kubernetes_version`` moves them too.
  vpc-cni, kube-proxy and the Pod Identity agent come before the node groups (a node without a CNI
  stays NotReady); coredns after them (a Deployment is DEGRADED until nodes exist). Source:
  terraform-aws-modules/terraform-aws-eks v21 main.tf (before_compute), EKS user guide
  managing-add-ons.
"""

from __future__ import annotations

from cdktf import TerraformResource
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_eks_addon_version import DataAwsEksAddonVersion
from cdktf_cdktf_provider_aws.eks_access_entry import EksAccessEntry
from cdktf_cdktf_provider_aws.eks_access_policy_association import EksAccessPolicyAssociation, EksAccessPolicyAssociationAccessScope
from cdktf_cdktf_provider_aws.eks_addon import EksAddon
from cdktf_cdktf_provider_aws.eks_cluster import (
    EksCluster,
    EksClusterAccessConfig,
    EksClusterEncryptionConfig,
    EksClusterEncryptionConfigProvider,
    EksClusterUpgradePolicy,
    EksClusterVpcConfig,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from app.layout import SERVING_NAMESPACE
from environments.schema import Environment
from stacks.aws.iam import assume_role_policy, managed_policy
from stacks.aws.kms import EnvironmentKey
from stacks.aws.network import Network
from stacks.aws.node_groups import ManagedNodeGroup, NodeRole

CLUSTER_ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
ADMIN_VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy"  # read everything, Secrets included
# the namespaces the workloads stack's Helm releases live in (Helm reads its release Secrets there)
WORKLOAD_NAMESPACES = ("kube-system", SERVING_NAMESPACE)
BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
AFTER_NODES = ("coredns",)
ADDON_IDS = {"eks-pod-identity-agent": "pod-identity-agent"}  # construct ids are addresses: the agent's predates the others


class Cluster(Construct):
    """Exposes ``cluster`` (name, endpoint), ``node_role``, ``name``, ``before_nodes`` (the add-ons a
    node group must wait for) and ``nodes`` (what waits for nodes: the node groups)."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, network: Network, key: EnvironmentKey) -> None:
        super().__init__(scope, id_)
        assert env.aws is not None and env.aws.cluster is not None
        cfg = env.aws.cluster
        self.name = env.resource_name("eks")
        role = IamRole(
            self,
            "role",
            name=env.resource_name("eks-cluster"),
            assume_role_policy=assume_role_policy("eks.amazonaws.com", extra_actions=("sts:TagSession",)),
        )
        attachment = IamRolePolicyAttachment(self, "role-policy", role=role.name, policy_arn=managed_policy("AmazonEKSClusterPolicy"))
        # EKS creates /aws/eks/<name>/cluster itself without retention or KMS: own it first.
        logs = CloudwatchLogGroup(
            self, "logs", name=f"/aws/eks/{self.name}/cluster", retention_in_days=cfg.log_retention_days, kms_key_id=key.arn
        )
        self.cluster = EksCluster(
            self,
            "cluster",
            name=self.name,
            version=cfg.kubernetes_version,
            role_arn=role.arn,
            vpc_config=EksClusterVpcConfig(
                subnet_ids=network.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=cfg.endpoint_public,
                public_access_cidrs=cfg.public_access_cidrs or None,
            ),
            encryption_config=EksClusterEncryptionConfig(
                resources=["secrets"], provider=EksClusterEncryptionConfigProvider(key_arn=key.arn)
            ),
            enabled_cluster_log_types=list(cfg.logging),
            access_config=EksClusterAccessConfig(authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False),
            bootstrap_self_managed_addons=False,
            upgrade_policy=EksClusterUpgradePolicy(support_type=cfg.support_type),
            depends_on=[attachment, logs],
        )
        self._access(env)
        self.before_nodes: list[TerraformResource] = [self._addon(name) for name in BEFORE_NODES]
        self.pod_identity_agent = self.before_nodes[-1]
        self.node_role = NodeRole(self, "node-role", env=env)
        system = ManagedNodeGroup(
            self,
            "system",
            env=env,
            cluster=self.cluster,
            role=self.node_role,
            network=network,
            name="system",
            cfg=cfg.system_node_group,
            ami_type="AL2023_x86_64_STANDARD",
            after=self.before_nodes,
        )
        self.nodes: list[TerraformResource] = [system.node_group]
        for name in AFTER_NODES:
            self._addon(name, after=self.nodes)

    def _addon(self, name: str, *, after: list[TerraformResource] | None = None) -> EksAddon:
        """A managed add-on at the default version for the cluster's Kubernetes version."""
        id_ = ADDON_IDS.get(name, name)
        version = DataAwsEksAddonVersion(self, f"{id_}-version", addon_name=name, kubernetes_version=self.cluster.version)
        return EksAddon(
            self,
            id_,
            cluster_name=self.cluster.name,
            addon_name=name,
            addon_version=version.version,
            resolve_conflicts_on_create="OVERWRITE",  # takes over a self-managed copy, if any
            resolve_conflicts_on_update="PRESERVE",
            depends_on=after,
        )

    def _access(self, env: Environment) -> None:
        for purpose, principal in (
            ("deploy", env.github_role_arn("deploy")),
            ("break-glass", env.break_glass_role_arn()),
        ):
            entry = EksAccessEntry(self, f"access-{purpose}", cluster_name=self.cluster.name, principal_arn=str(principal), type="STANDARD")
            EksAccessPolicyAssociation(
                self,
                f"access-{purpose}-admin",
                cluster_name=self.cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=CLUSTER_ADMIN,
                access_scope=EksAccessPolicyAssociationAccessScope(type="cluster"),
            )
        plan = EksAccessEntry(
            self, "access-plan", cluster_name=self.cluster.name, principal_arn=str(env.github_role_arn("plan")), type="STANDARD"
        )
        EksAccessPolicyAssociation(
            self,
            "access-plan-view",
            cluster_name=self.cluster.name,
            principal_arn=plan.principal_arn,
            policy_arn=ADMIN_VIEW,
            access_scope=EksAccessPolicyAssociationAccessScope(type="namespace", namespaces=list(WORKLOAD_NAMESPACES)),
        )
