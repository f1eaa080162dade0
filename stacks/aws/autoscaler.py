"""The Cluster Autoscaler's IAM role, bound to its service account by EKS Pod Identity.

The autoscaler itself is a Helm release in the ``<env>-workloads`` stack.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.eks_cluster import EksCluster
from cdktf_cdktf_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from environments.schema import Environment
from stacks.aws.iam import assume_role_policy, policy_document

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"


class AutoscalerIdentity(Construct):
    def __init__(self, scope: Construct, id_: str, *, env: Environment, cluster: EksCluster, cluster_name: str) -> None:
        super().__init__(scope, id_)
        role = IamRole(
            self,
            "role",
            name=env.resource_name("cluster-autoscaler"),
            assume_role_policy=assume_role_policy("pods.eks.amazonaws.com", extra_actions=("sts:TagSession",)),
        )
        IamRolePolicy(
            self,
            "policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "Discover",
                        "Effect": "Allow",
                        "Resource": ["*"],
                        "Action": [
                            "autoscaling:DescribeAutoScalingGroups",
                            "autoscaling:DescribeAutoScalingInstances",
                            "autoscaling:DescribeLaunchConfigurations",
                            "autoscaling:DescribeScalingActivities",
                            "autoscaling:DescribeTags",
                            "ec2:DescribeImages",
                            "ec2:DescribeInstanceTypes",
                            "ec2:DescribeLaunchTemplateVersions",
                            "ec2:GetInstanceTypesFromInstanceRequirements",
                            "eks:DescribeNodegroup",
                        ],
                    },
                    {
                        "Sid": "ScaleOwnGroups",
                        "Effect": "Allow",
                        "Resource": ["*"],
                        "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                        "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
                    },
                ]
            ),
        )
        EksPodIdentityAssociation(
            self, "association", cluster_name=cluster.name, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, role_arn=role.arn
        )
