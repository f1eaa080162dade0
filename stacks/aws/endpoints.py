"""Lambda endpoints served from a container image in the environment's ECR, behind a function URL.

Each function has a KMS-encrypted dead-letter queue for failed asynchronous invocations and its
environment variables encrypted with the environment's key. Code signing (CKV_AWS_272) does not apply:
Lambda does not support it for container images; ECR image scanning and immutable tags stand in.
"""

from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktf_cdktf_provider_aws.lambda_function_url import LambdaFunctionUrl
from cdktf_cdktf_provider_aws.security_group import SecurityGroup, SecurityGroupEgress
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct

from environments.schema import Environment, LambdaEndpoint
from stacks.aws.iam import assume_role_policy, managed_policy, policy_document
from stacks.aws.kms import EnvironmentKey
from stacks.aws.network import Network


class Endpoint(Construct):
    """One function (image), its log group, its least-privilege role and its function URL."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        cfg: LambdaEndpoint,
        repository_url: str,
        repository_arn: str,
        network: Network,
        key: EnvironmentKey,
        model_read: list[dict[str, Any]] | None = None,
        model_env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id_)
        name = env.resource_name(cfg.name)
        log_group = CloudwatchLogGroup(
            self, "logs", name=f"/aws/lambda/{name}", retention_in_days=cfg.log_retention_days, kms_key_id=key.arn
        )
        dlq = SqsQueue(
            self,
            "dlq",
            name=f"{name}-dlq",
            kms_master_key_id=key.arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=14 * 86400,
        )
        role = IamRole(self, "role", name=f"{name}-lambda", assume_role_policy=assume_role_policy("lambda.amazonaws.com"))
        # ENI management for VPC access is AWS's managed policy; everything else is scoped here.
        vpc_access = IamRolePolicyAttachment(
            self, "vpc-access", role=role.name, policy_arn=managed_policy("service-role/AWSLambdaVPCAccessExecutionRole")
        )
        inline = IamRolePolicy(
            self,
            "policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "WriteOwnLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": [f"{log_group.arn}:*"],
                    },
                    {
                        "Sid": "PullOwnImage",
                        "Effect": "Allow",
                        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                        "Resource": [repository_arn],
                    },
                    {
                        "Sid": "DeadLetters",
                        "Effect": "Allow",
                        "Action": ["sqs:SendMessage"],
                        "Resource": [dlq.arn],
                    },
                    {
                        "Sid": "EnvironmentKey",
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                        "Resource": [key.arn],
                    },
                    {
                        "Sid": "Traces",
                        "Effect": "Allow",
                        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                        "Resource": ["*"],
                    },
                    *(model_read or []),
                ]
            ),
        )
        security_group = SecurityGroup(
            self,
            "sg",
            name=f"{name}-lambda",
            description=f"{name}: outbound HTTPS only",
            vpc_id=network.vpc_id,
            egress=[
                SecurityGroupEgress(
                    description="HTTPS to AWS APIs and the model registry",
                    from_port=443,
                    to_port=443,
                    protocol="tcp",
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
        )
        self.function = LambdaFunction(
            self,
            "function",
            function_name=name,
            package_type="Image",
            image_uri=f"{repository_url}{cfg.image_ref}",
            role=role.arn,
            memory_size=cfg.memory_mb,
            timeout=cfg.timeout_s,
            architectures=[cfg.architecture],
            reserved_concurrent_executions=cfg.reserved_concurrency,
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            logging_config=LambdaFunctionLoggingConfig(log_format="JSON", log_group=log_group.name),
            vpc_config=LambdaFunctionVpcConfig(subnet_ids=network.private_subnet_ids, security_group_ids=[security_group.id]),
            environment=LambdaFunctionEnvironment(variables={"MODEL_ENV": env.name, **(model_env or {})}),
            kms_key_arn=key.arn,
            dead_letter_config=LambdaFunctionDeadLetterConfig(target_arn=dlq.arn),
            depends_on=[vpc_access, inline],
        )
        self.url = LambdaFunctionUrl(self, "url", function_name=self.function.function_name, authorization_type=cfg.url_auth)
