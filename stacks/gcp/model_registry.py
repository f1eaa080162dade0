"""The model registry on GCP: a GCS bucket (versioned, uniform bucket-level access, public access
prevented, soft delete for ``models.gcs_retention_days``) whose usage logs go to a logs bucket (which
logs back to it: GCS logging must not target the bucket itself, CKV_GCP_63), the training service
account that writes it, the serving service account the GKE workload impersonates (Workload Identity)
to read it. The CI deploy service account may write too: it copies a promoted version in."""

from __future__ import annotations

from cdktf import TerraformResource
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
    StorageBucketLogging,
    StorageBucketSoftDeletePolicy,
    StorageBucketVersioning,
)
from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember, StorageBucketIamMemberCondition
from constructs import Construct

from app.layout import SERVING_NAMESPACE, SERVING_SERVICE_ACCOUNT, model_prefix
from environments.schema import Environment

LOGS_PREFIX = "access-logs/"


def serving_principal(env: Environment, project_number: str) -> str:
    """The IAM principal of the model server's Kubernetes service account on the environment's GKE cluster."""
    assert env.gcp is not None
    pool = f"{env.gcp.project_id}.svc.id.goog"
    return (
        f"principal://iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{pool}"
        f"/subject/ns/{SERVING_NAMESPACE}/sa/{SERVING_SERVICE_ACCOUNT}"
    )


class ModelRegistry(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        project_number: str,
        cluster: TerraformResource | None,
        promotion_reader: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None and env.models is not None
        name = env.model_bucket("gcp")
        logs_name = f"{name}-logs"
        self.bucket = self._bucket("bucket", env, name, logs_name, env.models.keep_noncurrent_days, env.models.gcs_retention_days)
        logs = self._bucket("logs", env, logs_name, name, 1, 0, expire_days=365)
        # GCS writes usage logs as this Google group (cloud.google.com/storage/docs/access-logs)
        for log_id, bucket in (("usage-logs", logs), ("usage-logs-of-logs", self.bucket)):
            StorageBucketIamMember(
                self, log_id, bucket=bucket.name, role="roles/storage.objectCreator", member="group:cloud-storage-analytics@google.com"
            )
        self.training = ServiceAccount(self, "training", account_id=env.resource_name("training"), display_name=f"Training of {env.name}")
        for role in ("roles/storage.objectCreator", "roles/storage.objectViewer"):
            StorageBucketIamMember(
                self,
                f"training-{role.rsplit('.', 1)[1]}",
                bucket=self.bucket.name,
                role=role,
                member=f"serviceAccount:{self.training.email}",
            )
        deploy = env.gcp_service_account("deploy")
        StorageBucketIamMember(
            self, "promotion-writes", bucket=self.bucket.name, role="roles/storage.objectCreator", member=f"serviceAccount:{deploy}"
        )
        # A version's objects are created once (objectCreator cannot replace or delete: replacing an
        # object needs storage.objects.create and .delete, Cloud Storage "IAM permissions"); the
        # aliases are moved, so the writers may replace objects under aliases/ only (an IAM condition
        # on the object's resource.name, "projects/_/buckets/<bucket>/objects/<key>": Cloud Storage,
        # "Use IAM Conditions"; conditions need uniform bucket-level access, which the bucket has).
        aliases = f"projects/_/buckets/{name}/objects/{model_prefix(env.models.name)}/aliases/"
        for writer_id, member in (("training", f"serviceAccount:{self.training.email}"), ("promotion", f"serviceAccount:{deploy}")):
            StorageBucketIamMember(
                self,
                f"{writer_id}-moves-aliases",
                bucket=self.bucket.name,
                role="roles/storage.objectUser",
                member=member,
                condition=StorageBucketIamMemberCondition(
                    title="aliases-only",
                    description="replace the alias objects; versions stay create-once",
                    expression=f'resource.name.startsWith("{aliases}")',
                ),
            )
        if promotion_reader:
            # the next environment's deploy service account copies the versions it promotes
            StorageBucketIamMember(
                self,
                "promotion-reads",
                bucket=self.bucket.name,
                role="roles/storage.objectViewer",
                member=f"serviceAccount:{promotion_reader}",
            )
        if cluster is not None and env.gcp.cluster is not None and env.gcp.cluster.workload_identity:
            # the model server's pods read as their Kubernetes service account, through Workload Identity
            # Federation for GKE: a role granted to the KSA's principal directly, no Google service account
            # and no annotation to forget. The pool exists once the cluster does ("Identity Pool does not
            # exist" otherwise: terraform-google-kubernetes-engine#916). GKE docs, "Authenticate to Google
            # Cloud APIs from GKE workloads" (principal://…/subject/ns/NAMESPACE/sa/KSA)
            StorageBucketIamMember(
                self,
                "serving-reads",
                bucket=self.bucket.name,
                role="roles/storage.objectViewer",
                member=serving_principal(env, project_number),
                depends_on=[cluster],
            )

    def _bucket(
        self,
        id_: str,
        env: Environment,
        name: str,
        log_to: str,
        keep_noncurrent_days: int,
        soft_delete_days: int,
        expire_days: int | None = None,
    ) -> StorageBucket:
        assert env.gcp is not None
        rules = [
            StorageBucketLifecycleRule(
                action=StorageBucketLifecycleRuleAction(type="Delete"),
                condition=StorageBucketLifecycleRuleCondition(days_since_noncurrent_time=keep_noncurrent_days, with_state="ARCHIVED"),
            ),
            StorageBucketLifecycleRule(
                action=StorageBucketLifecycleRuleAction(type="Delete"),
                condition=StorageBucketLifecycleRuleCondition(
                    age=expire_days or 365, matches_prefix=None if expire_days else [LOGS_PREFIX]
                ),
            ),
        ]
        return StorageBucket(
            self,
            id_,
            name=name,
            location=env.gcp.region.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=StorageBucketVersioning(enabled=True),
            soft_delete_policy=StorageBucketSoftDeletePolicy(retention_duration_seconds=soft_delete_days * 86400),
            # literal names, not references: the two buckets log to each other
            logging=StorageBucketLogging(log_bucket=log_to, log_object_prefix=LOGS_PREFIX),
            lifecycle_rule=rules,
            labels=dict(env.all_tags),
            force_destroy=False,
            lifecycle={"prevent_destroy": True},
        )
