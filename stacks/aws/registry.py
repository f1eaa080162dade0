"""ECR repositories: immutable tags, scan on push, KMS, lifecycle (keep the last N tagged images), and
who may pull besides the account: the Lambda service for the environment's functions, and the next
environment's deploy role, which copies a promoted image by digest into its own repositories."""

from __future__ import annotations

import json
from typing import Any

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from cdktf_cdktf_provider_aws.ecr_repository_policy import EcrRepositoryPolicy
from constructs import Construct

from environments.schema import EcrRepository as EcrConfig
from environments.schema import Environment
from stacks.aws.iam import cross_account_principal, policy_document

PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


def lifecycle_policy(cfg: EcrConfig) -> str:
    """Expire untagged images after N days, then keep only the last N images."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"expire untagged images after {cfg.untagged_expire_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": cfg.untagged_expire_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"keep the last {cfg.keep_last} images",
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": cfg.keep_last},
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )


def repository_arn(env: Environment, name: str) -> str:
    """The ARN of the environment's repository ``name`` (derived, so other stacks need no reference)."""
    assert env.aws is not None
    return f"arn:aws:ecr:{env.aws.region}:{env.aws.account_id}:repository/{env.resource_name(name)}"


class Registry(Construct):
    """One ECR repository; exposes ``repository_url`` and ``arn``."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        cfg: EcrConfig,
        key_arn: str,
        lambda_pulls: bool,
        promotion_reader: str | None,
    ) -> None:
        super().__init__(scope, id_)
        assert env.aws is not None
        self.repository = EcrRepository(
            self,
            "repository",
            name=env.resource_name(cfg.name),
            image_tag_mutability="IMMUTABLE" if cfg.immutable_tags else "MUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=cfg.scan_on_push),
            encryption_configuration=[
                EcrRepositoryEncryptionConfiguration(encryption_type="KMS" if cfg.kms else "AES256", kms_key=key_arn if cfg.kms else None)
            ],
        )
        EcrLifecyclePolicy(self, "lifecycle", repository=self.repository.name, policy=lifecycle_policy(cfg))
        statements: list[dict[str, Any]] = []
        if lambda_pulls:
            # Lambda pulls a function's image with its service principal, not the execution role; the
            # repository policy must allow it (re:Post "lambda-ecr-image"; Lambda developer guide,
            # images-create: Amazon ECR permissions), scoped to this environment's functions
            statements.append(
                {
                    "Sid": "LambdaPulls",
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    "Condition": {
                        "StringLike": {
                            "aws:sourceArn": f"arn:aws:lambda:{env.aws.region}:{env.aws.account_id}:function:{env.resource_name('*')}"
                        }
                    },
                }
            )
        if promotion_reader:
            statements.append({"Sid": "PromotionPulls", "Effect": "Allow", **cross_account_principal(promotion_reader), "Action": PULL})
        if statements:
            EcrRepositoryPolicy(self, "policy", repository=self.repository.name, policy=policy_document(statements))
        self.repository_url = self.repository.repository_url
        self.arn = self.repository.arn
