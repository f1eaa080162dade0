"""The model registry on AWS: an S3 bucket, its replica in another region, and who may write and read.

Layout (``infra model``): ``models/<name>/<version>/`` holds a version's files and ``manifest.json``;
``models/<name>/aliases/<alias>.json`` names the version an alias points at. Versioned, SSE-KMS with
the environment's key, public access blocked, TLS only, old versions expired after
``models.keep_noncurrent_days``, server access logs under ``access-logs/`` of the same bucket (AWS
allows a bucket to be its own log target), object events to EventBridge (continuous training can
react to a new version). Writes under ``models/`` are denied to everyone but the environment's
training role and its CI deploy role (which copies a promoted version in); reading is granted to the
serving roles (Lambda, the cluster's pods through EKS Pod Identity) by :meth:`ModelRegistry.read_statements`.
"""

from __future__ import annotations

import json
from typing import Any

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.eks_cluster import EksCluster
from cdktf_cdktf_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_replication_configuration import (
    S3BucketReplicationConfigurationA,
    S3BucketReplicationConfigurationRule,
    S3BucketReplicationConfigurationRuleDeleteMarkerReplication,
    S3BucketReplicationConfigurationRuleDestination,
    S3BucketReplicationConfigurationRuleDestinationEncryptionConfiguration,
    S3BucketReplicationConfigurationRuleFilter,
    S3BucketReplicationConfigurationRuleSourceSelectionCriteria,
    S3BucketReplicationConfigurationRuleSourceSelectionCriteriaSseKmsEncryptedObjects,
)
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration
from constructs import Construct

from app.layout import MODELS_PREFIX, SERVING_NAMESPACE, SERVING_SERVICE_ACCOUNT, TRAINING_NAMESPACE, TRAINING_SERVICE_ACCOUNT
from environments.schema import Environment
from stacks.aws.iam import assume_role_policy, cross_account_principal, policy_document
from stacks.aws.kms import EnvironmentKey, account_administers

LOGS_PREFIX = "access-logs/"


class SecureBucket(Construct):
    """A versioned, KMS-encrypted, private, TLS-only bucket that logs its own access."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        name: str,
        key_arn: str,
        keep_noncurrent_days: int,
        extra_statements: list[dict[str, Any]],
        provider: TerraformProvider | None = None,
    ) -> None:
        super().__init__(scope, id_)
        assert env.aws is not None
        self.bucket = S3Bucket(self, "bucket", bucket=name, provider=provider, lifecycle={"prevent_destroy": True})
        self.name, self.arn = name, self.bucket.arn
        self.versioning = S3BucketVersioningA(
            self,
            "versioning",
            bucket=self.bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
            provider=provider,
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=key_arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            provider=provider,
        )
        S3BucketPublicAccessBlock(
            self,
            "public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            provider=provider,
        )
        S3BucketLifecycleConfiguration(
            self,
            "lifecycle",
            bucket=self.bucket.id,
            rule=[
                # the whole bucket (an empty filter): old versions expire, failed uploads are aborted (CKV_AWS_300)
                S3BucketLifecycleConfigurationRule(
                    id="history",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=keep_noncurrent_days)
                    ],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                    ],
                ),
                S3BucketLifecycleConfigurationRule(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=LOGS_PREFIX)],
                    expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=365)],
                ),
            ],
            depends_on=[self.versioning],
            provider=provider,
        )
        S3BucketLoggingA(self, "logging", bucket=self.bucket.id, target_bucket=self.bucket.id, target_prefix=LOGS_PREFIX, provider=provider)
        S3BucketNotification(self, "events", bucket=self.bucket.id, eventbridge=True, provider=provider)
        statements = [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [self.bucket.arn, f"{self.bucket.arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "ServerAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{self.bucket.arn}/{LOGS_PREFIX}*",
                "Condition": {"StringEquals": {"aws:SourceAccount": env.aws.account_id}},
            },
            *extra_statements,
        ]
        S3BucketPolicy(self, "policy", bucket=self.bucket.id, policy=policy_document(statements), provider=provider)


class ModelRegistry(Construct):
    """The environment's registry bucket (and replica), its training role, and its read grants."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        key: EnvironmentKey,
        cluster: EksCluster | None,
        replica_provider: TerraformProvider | None,
        promotion_reader: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        assert env.aws is not None and env.models is not None
        account = env.aws.account_id
        name = env.model_bucket("aws")
        trust: list[dict[str, Any]] = [
            {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
        ]
        if env.ci is not None:
            # the continuous-training workflow only: train.yml on the default branch (its schedule runs
            # there; a dispatch from another branch gets another sub), under the repository's OIDC
            # template (repo, context, job_workflow_ref: infra preflight checks it). No GitHub
            # Environment: a deploy environment's branch policy names the environment's branch.
            oidc = "token.actions.githubusercontent.com"
            default = f"refs/heads/{env.ci.default_branch}"
            subject = env.oidc_subject(context=f"ref:{default}", workflow="train.yml", ref=default)
            trust.append(
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{oidc}"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{oidc}:aud": "sts.amazonaws.com",
                            f"{oidc}:sub": subject,
                        }
                    },
                }
            )
        self.training_role = IamRole(
            self,
            "training-role",
            name=env.resource_name("training"),
            description=f"Trains and registers models of {env.name} (EKS Pod Identity: {TRAINING_NAMESPACE}/{TRAINING_SERVICE_ACCOUNT}; CI)",
            assume_role_policy=policy_document(trust),
        )
        writers = [
            f"arn:aws:iam::{account}:role/{env.resource_name('training')}",
            f"arn:aws:iam::{account}:role/{env.github_role_name('deploy')}",
        ]
        only_writers = {
            "Sid": "OnlyTrainingAndPromotionWrite",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            "Resource": f"arn:aws:s3:::{name}/{MODELS_PREFIX}*",
            "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalArn": writers}},
        }
        # A version is written once and never deleted, whoever writes (training, the promotion, an
        # admin's script): every PutObject outside aliases/ and the access logs must carry
        # If-None-Match (the condition key s3:if-none-match; S3 user guide, "Enforce conditional
        # writes on Amazon S3 buckets"), so it cannot replace an object; deletes are refused there.
        # infra model writes single PUTs (no multipart, which this also refuses, and no CopyObject,
        # which an enforced bucket refuses with 403); noncurrent-version expiry is S3 lifecycle's.
        movable = [f"arn:aws:s3:::{name}/{MODELS_PREFIX}*/aliases/*", f"arn:aws:s3:::{name}/{LOGS_PREFIX}*"]
        write_once: list[dict[str, Any]] = [
            {
                "Sid": "VersionsAreWrittenOnce",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "NotResource": movable,
                "Condition": {"Null": {"s3:if-none-match": "true"}},
            },
            {
                "Sid": "VersionsAreNeverDeleted",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                "NotResource": movable,
            },
        ]
        self.bucket = SecureBucket(
            self,
            "bucket",
            env=env,
            name=name,
            key_arn=key.arn,
            keep_noncurrent_days=env.models.keep_noncurrent_days,
            extra_statements=[only_writers, *write_once, *self._promotion_reads(name, promotion_reader)],
        )
        self.arn, self.name = self.bucket.arn, name
        IamRolePolicy(
            self,
            "training-policy",
            role=self.training_role.id,
            policy=policy_document(
                [
                    {"Sid": "ListModels", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": self.bucket.arn},
                    {
                        "Sid": "RegisterModels",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:PutObject"],
                        "Resource": f"{self.bucket.arn}/{MODELS_PREFIX}*",
                    },
                    {"Sid": "EnvironmentKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key.arn},
                ]
            ),
        )
        if cluster is not None:
            EksPodIdentityAssociation(
                self,
                "training-identity",
                cluster_name=cluster.name,
                namespace=TRAINING_NAMESPACE,
                service_account=TRAINING_SERVICE_ACCOUNT,
                role_arn=self.training_role.arn,
            )
            self.serving_role = IamRole(
                self,
                "serving-role",
                name=env.resource_name("serving"),
                description=f"The model server's pods of {env.name} (EKS Pod Identity: {SERVING_NAMESPACE}/{SERVING_SERVICE_ACCOUNT})",
                assume_role_policy=assume_role_policy("pods.eks.amazonaws.com", extra_actions=("sts:TagSession",)),
            )
            IamRolePolicy(
                self, "serving-policy", role=self.serving_role.id, policy=policy_document(self.read_statements(key.arn, env.models.name))
            )
            EksPodIdentityAssociation(
                self,
                "serving-identity",
                cluster_name=cluster.name,
                namespace=SERVING_NAMESPACE,
                service_account=SERVING_SERVICE_ACCOUNT,
                role_arn=self.serving_role.arn,
            )
        if env.models.replica_region and replica_provider is not None:
            self._replica(env, key, replica_provider)

    @staticmethod
    def _promotion_reads(bucket: str, reader: str | None) -> list[dict[str, Any]]:
        """The next environment's deploy role (another account) reads the versions it promotes."""
        if reader is None:
            return []
        return [
            {
                "Sid": "PromotionReads",
                "Effect": "Allow",
                **cross_account_principal(reader),
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{MODELS_PREFIX}*"],
            }
        ]

    def read_statements(self, key_arn: str, model: str) -> list[dict[str, Any]]:
        """What a serving role needs to load a model: list its prefix, read its objects, decrypt."""
        return [
            {
                "Sid": "ListModel",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": self.arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{MODELS_PREFIX}{model}/*"]}},
            },
            {"Sid": "ReadModel", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{self.arn}/{MODELS_PREFIX}{model}/*"},
            {"Sid": "DecryptModel", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn},
        ]

    def _replica(self, env: Environment, key: EnvironmentKey, provider: TerraformProvider) -> None:
        assert env.aws is not None and env.models is not None and env.models.replica_region is not None
        account, region = env.aws.account_id, env.models.replica_region
        replica_key = KmsKey(
            self,
            "replica-key",
            description=f"{env.resource_name('models-replica')}: the model registry's replica in {region}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        account_administers(account),
                        {
                            "Sid": "ServerAccessLogs",
                            "Effect": "Allow",
                            "Principal": {"Service": "logging.s3.amazonaws.com"},
                            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                            "Resource": "*",
                        },
                    ],
                }
            ),
            provider=provider,
        )
        replica = SecureBucket(
            self,
            "replica",
            env=env,
            name=env.model_bucket("aws", replica=True),
            key_arn=replica_key.arn,
            keep_noncurrent_days=env.models.keep_noncurrent_days,
            extra_statements=[],
            provider=provider,
        )
        role = IamRole(
            self,
            "replication-role",
            name=env.resource_name("models-replication"),
            assume_role_policy=assume_role_policy("s3.amazonaws.com"),
        )
        IamRolePolicy(
            self,
            "replication-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "ReadSource",
                        "Effect": "Allow",
                        "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                        "Resource": self.arn,
                    },
                    {
                        "Sid": "ReadSourceVersions",
                        "Effect": "Allow",
                        "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
                        "Resource": f"{self.arn}/{MODELS_PREFIX}*",
                    },
                    {
                        "Sid": "WriteReplica",
                        "Effect": "Allow",
                        "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                        "Resource": f"{replica.arn}/{MODELS_PREFIX}*",
                    },
                    {"Sid": "DecryptSource", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key.arn},
                    {"Sid": "EncryptReplica", "Effect": "Allow", "Action": "kms:Encrypt", "Resource": replica_key.arn},
                ]
            ),
        )
        S3BucketReplicationConfigurationA(
            self,
            "replication",
            bucket=self.bucket.bucket.id,
            role=role.arn,
            rule=[
                S3BucketReplicationConfigurationRule(
                    id="models",
                    status="Enabled",
                    filter=S3BucketReplicationConfigurationRuleFilter(prefix=MODELS_PREFIX),
                    delete_marker_replication=S3BucketReplicationConfigurationRuleDeleteMarkerReplication(status="Disabled"),
                    source_selection_criteria=S3BucketReplicationConfigurationRuleSourceSelectionCriteria(
                        sse_kms_encrypted_objects=S3BucketReplicationConfigurationRuleSourceSelectionCriteriaSseKmsEncryptedObjects(
                            status="Enabled"
                        )
                    ),
                    destination=S3BucketReplicationConfigurationRuleDestination(
                        bucket=replica.arn,
                        storage_class="STANDARD_IA",
                        encryption_configuration=S3BucketReplicationConfigurationRuleDestinationEncryptionConfiguration(
                            replica_kms_key_id=replica_key.arn
                        ),
                    ),
                )
            ],
            depends_on=[self.bucket.versioning, replica.versioning],
        )
