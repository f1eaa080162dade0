"""ECR repositories: immutable tags, scan on push, KMS, lifecycle (keep the last N tagged images)."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from constructs import Construct

from environments.schema import EcrRepository as EcrConfig
from environments.schema import Environment
from stacks.aws.kms import EnvironmentKey


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


class Registry(Construct):
    """One ECR repository; exposes ``repository_url`` and ``arn``."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, cfg: EcrConfig, key: EnvironmentKey) -> None:
        super().__init__(scope, id_)
        self.repository = EcrRepository(
            self,
            "repository",
            name=env.resource_name(cfg.name),
            image_tag_mutability="IMMUTABLE" if cfg.immutable_tags else "MUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=cfg.scan_on_push),
            encryption_configuration=[
                EcrRepositoryEncryptionConfiguration(encryption_type="KMS" if cfg.kms else "AES256", kms_key=key.arn if cfg.kms else None)
            ],
        )
        EcrLifecyclePolicy(self, "lifecycle", repository=self.repository.name, policy=lifecycle_policy(cfg))
        self.repository_url = self.repository.repository_url
        self.arn = self.repository.arn
