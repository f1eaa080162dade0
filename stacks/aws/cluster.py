"""EKS control plane with encrypted secrets, control-plane logs and a system node group."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
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

from environments.schema import Environment
from stacks.aws.iam import assume_role_policy, managed_policy
from stacks.aws.kms import EnvironmentKey
from stacks.aws.network import Network
from stacks.aws.node_groups import ManagedNodeGroup, NodeRole


class Cluster(Construct):
    """Exposes ``cluster`` (name, endpoint), ``node_role`` and ``name``."""

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
            access_config=EksClusterAccessConfig(authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True),
            upgrade_policy=EksClusterUpgradePolicy(support_type=cfg.support_type),
            depends_on=[attachment, logs],
        )
        EksAddon(self, "pod-identity-agent", cluster_name=self.cluster.name, addon_name="eks-pod-identity-agent")
        self.node_role = NodeRole(self, "node-role", env=env)
        ManagedNodeGroup(
            self,
            "system",
            env=env,
            cluster=self.cluster,
            role=self.node_role,
            network=network,
            name="system",
            cfg=cfg.system_node_group,
            ami_type="AL2023_x86_64_STANDARD",
        )
