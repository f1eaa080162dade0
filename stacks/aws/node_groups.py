"""EKS managed node groups: a launch template (IMDSv2, encrypted gp3 root disk) per group, and for
GPU groups the NVIDIA AMI, taints, labels and the Cluster Autoscaler's scale-from-zero tags.

EKS does not copy a node group's tags to its Auto Scaling group (containers-roadmap#608), so the
node-template tags that let the Cluster Autoscaler scale a group up from zero are written to the
ASG with ``aws_autoscaling_group_tag``, and also kept on the node group (read through
``eks:DescribeNodegroup``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from cdktf import TerraformResource, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.autoscaling_group_tag import AutoscalingGroupTagA, AutoscalingGroupTagTag
from cdktf_cdktf_provider_aws.eks_cluster import EksCluster
from cdktf_cdktf_provider_aws.eks_node_group import (
    EksNodeGroup,
    EksNodeGroupLaunchTemplate,
    EksNodeGroupScalingConfig,
    EksNodeGroupTaint,
    EksNodeGroupUpdateConfig,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateMetadataOptions,
    LaunchTemplateTagSpecifications,
)
from constructs import Construct

from app.layout import GPU_GROUP_LABEL
from environments.schema import EksGpuNodeGroup, Environment, Taint
from environments.schema import EksNodeGroup as NodeGroupConfig
from stacks.aws.iam import assume_role_policy, managed_policy
from stacks.aws.network import Network

EKS_TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
CA_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
GPU_RESOURCE = "nvidia.com/gpu"


class NodeRole(Construct):
    """The role every node of the cluster runs as (worker, ECR read-only, VPC CNI)."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment) -> None:
        super().__init__(scope, id_)
        self.role = IamRole(self, "role", name=env.resource_name("eks-node"), assume_role_policy=assume_role_policy("ec2.amazonaws.com"))
        self.attachments = [
            IamRolePolicyAttachment(self, name, role=self.role.name, policy_arn=managed_policy(name))
            for name in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy")
        ]
        self.arn = self.role.arn


def eks_taints(taints: list[Taint]) -> list[EksNodeGroupTaint]:
    return [EksNodeGroupTaint(key=t.key, value=t.value or None, effect=EKS_TAINT_EFFECT[t.effect]) for t in taints]


def autoscaler_template_tags(labels: Mapping[str, str], taints: list[Taint], gpus: int) -> dict[str, str]:
    """The node-template tags the Cluster Autoscaler reads to scale a group up from zero."""
    tags = {f"{CA_TEMPLATE}/label/{k}": v for k, v in labels.items()}
    tags.update({f"{CA_TEMPLATE}/taint/{t.key}": f"{t.value}:{t.effect}" for t in taints})
    if gpus:
        tags[f"{CA_TEMPLATE}/resources/{GPU_RESOURCE}"] = str(gpus)
    return tags


class ManagedNodeGroup(Construct):
    """A managed node group with its own launch template; exposes ``node_group``."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        cluster: EksCluster,
        role: NodeRole,
        network: Network,
        name: str,
        cfg: NodeGroupConfig,
        ami_type: str,
        labels: Mapping[str, str] | None = None,
        extra_tags: Mapping[str, str] | None = None,
        after: Sequence[TerraformResource] = (),
    ) -> None:
        super().__init__(scope, id_)
        full_name = env.eks_node_group_name(name)
        instance_tags = {**env.all_tags, "Name": full_name}
        template = LaunchTemplate(
            self,
            "launch-template",
            name=full_name,
            update_default_version=True,
            metadata_options=LaunchTemplateMetadataOptions(http_tokens="required", http_put_response_hop_limit=1, http_endpoint="enabled"),
            block_device_mappings=[
                LaunchTemplateBlockDeviceMappings(
                    device_name="/dev/xvda",
                    ebs=LaunchTemplateBlockDeviceMappingsEbs(
                        volume_size=cfg.disk_gb, volume_type="gp3", encrypted="true", delete_on_termination="true"
                    ),
                )
            ],
            tag_specifications=[
                LaunchTemplateTagSpecifications(resource_type=kind, tags=instance_tags)
                for kind in ("instance", "volume", "network-interface")
            ],
        )
        self.node_group = EksNodeGroup(
            self,
            "node-group",
            cluster_name=cluster.name,
            node_group_name=full_name,
            node_role_arn=role.arn,
            subnet_ids=network.private_subnet_ids,
            ami_type=ami_type,
            instance_types=list(cfg.instance_types),
            capacity_type="SPOT" if cfg.capacity == "spot" else "ON_DEMAND",
            scaling_config=EksNodeGroupScalingConfig(min_size=cfg.min, desired_size=cfg.desired, max_size=cfg.max),
            update_config=EksNodeGroupUpdateConfig(max_unavailable=1),
            launch_template=EksNodeGroupLaunchTemplate(id=template.id, version=Token.as_string(template.latest_version)),
            labels={**cfg.labels, **(labels or {})},
            taint=eks_taints(cfg.taints),
            tags=dict(extra_tags or {}),
            # the autoscaler owns desired size once the group exists
            lifecycle=TerraformResourceLifecycle(ignore_changes=["scaling_config[0].desired_size"]),
            depends_on=[*role.attachments, *after],  # the node role, and the add-ons a node needs to become Ready
        )


class GpuNodeGroup(Construct):
    """A GPU node group that scales from zero: NVIDIA AMI, GPU taints/labels, autoscaler tags."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        cluster: EksCluster,
        role: NodeRole,
        network: Network,
        cfg: EksGpuNodeGroup,
        after: Sequence[TerraformResource] = (),
    ) -> None:
        super().__init__(scope, id_)
        labels = {"nvidia.com/gpu.present": "true", "k8s.amazonaws.com/accelerator": cfg.gpu.model, GPU_GROUP_LABEL: cfg.name}
        template_labels = {**cfg.labels, **labels, "eks.amazonaws.com/capacityType": "SPOT" if cfg.capacity == "spot" else "ON_DEMAND"}
        ca_tags = autoscaler_template_tags(template_labels, cfg.taints, cfg.gpu.count)
        group = ManagedNodeGroup(
            self,
            "group",
            env=env,
            cluster=cluster,
            role=role,
            network=network,
            name=cfg.name,
            cfg=cfg,
            ami_type=cfg.resolved_ami_type,
            labels=labels,
            extra_tags=ca_tags,
            after=after,
        )
        self.node_group = group.node_group
        self.asg_name = asg_name = self.node_group.resources.get(0).autoscaling_groups.get(0).name
        for key, value in sorted(ca_tags.items()):
            # the id follows the tag key, so adding a label never renumbers the others
            tag_id = re.sub(r"[^a-z0-9]+", "-", key.removeprefix(CA_TEMPLATE + "/").lower())
            AutoscalingGroupTagA(
                self,
                f"asg-tag-{tag_id}",
                autoscaling_group_name=asg_name,
                tag=AutoscalingGroupTagTag(key=key, value=value, propagate_at_launch=False),
            )
