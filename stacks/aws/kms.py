"""One customer-managed KMS key per environment: EKS secrets, ECR, CloudWatch Logs, the alert topic, the model registry."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from environments.schema import Environment
from stacks.aws.iam import cross_account_principal


def account_administers(account: str) -> dict[str, object]:
    """The key-policy statement that lets the account's IAM policies govern the key."""
    return {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


class EnvironmentKey(Construct):
    """A rotating key whose policy lets the account administer it and CloudWatch Logs use it."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, model_reader: str | None = None) -> None:
        super().__init__(scope, id_)
        assert env.aws is not None
        account, region = env.aws.account_id, env.aws.region
        statements: list[dict[str, object]] = [
            account_administers(account),
            {
                "Sid": "CloudWatchLogsEncrypts",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account}:log-group:*"}},
            },
            {
                # alarms publish to the encrypted alert topic; S3 writes its access logs to the encrypted registry
                "Sid": "AlarmsAndAccessLogsEncrypt",
                "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com", "logging.s3.amazonaws.com"]},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
        ]
        if model_reader:
            reader = cross_account_principal(model_reader)  # the role may not exist yet: the account, then the role by ARN
            # the next environment's deploy role decrypts the models it copies out of the registry, through S3 only
            statements.append(
                {
                    "Sid": "PromotionDecryptsModels",
                    "Effect": "Allow",
                    "Principal": reader["Principal"],
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {**reader["Condition"], "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                }
            )
        self.key = KmsKey(
            self,
            "key",
            description=f"{env.resource_name('key')}: EKS secrets, ECR images and logs of {env.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        KmsAlias(self, "alias", name=f"alias/{env.resource_name('key')}", target_key_id=self.key.key_id)
        self.arn = self.key.arn
