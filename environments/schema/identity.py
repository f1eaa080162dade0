"""What an environment's identity derives: resource names, role and service-account names, image
repositories, bucket names, the state key, the tags every resource carries. Properties and methods,
never fields: an environment file holds only what differs between environments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from environments.schema.aws import AwsConfig
    from environments.schema.gcp import GcpConfig
    from environments.schema.platform import Ci, StateBackend
    from environments.schema.types import Cloud

Workflow = Literal["deploy.yml", "review.yml", "drift.yml", "train.yml"]
# The repository's OIDC subject template (PUT /repos/{owner}/{repo}/actions/oidc/customization/sub with
# {"use_default": false, "include_claim_keys": ["repo", "context", "job_workflow_ref"]}, docs/security.md):
# the subject names the workflow file and the ref it ran from, so a role can trust one workflow on one
# branch. AWS trust policies can condition on `sub` only, not on custom claims (GitHub docs, "OIDC in AWS").
OIDC_CLAIM_KEYS = ("repo", "context", "job_workflow_ref")
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"


class Identity:
    """Mixed into :class:`~environments.schema.environment.Environment`."""

    if TYPE_CHECKING:
        name: str
        project: str
        tags: dict[str, str]
        aws: AwsConfig | None
        gcp: GcpConfig | None
        state: StateBackend
        ci: Ci | None
        branch: str

    def resource_name(self, component: str) -> str:
        """``<project>-<env>-<component>``: the one naming rule for every resource."""
        return f"{self.project}-{self.name}-{component}"

    def eks_node_group_name(self, group: str) -> str:
        """An EKS managed node group's name (EKS labels its nodes with it)."""
        return self.resource_name(f"ng-{group}")

    def gke_gpu_pool_name(self, pool: str) -> str:
        """A GKE GPU node pool's name (GKE labels its nodes with it)."""
        return self.resource_name(f"gpu-{pool}")

    def gpu_pool_name(self, cloud: Cloud, pool: str) -> str:
        return self.eks_node_group_name(pool) if cloud == "aws" else self.gke_gpu_pool_name(pool)

    def image_repository(self, cloud: Cloud, registry: str) -> str:
        """Where this environment's images of ``registry`` live: the ECR repository URL, or the
        Artifact Registry repository path plus the image name (the registry's name)."""
        if cloud == "aws":
            assert self.aws is not None
            return f"{self.aws.account_id}.dkr.ecr.{self.aws.region}.amazonaws.com/{self.resource_name(registry)}"
        assert self.gcp is not None
        return f"{self.artifact_registry_url(registry)}/{registry}"

    def artifact_registry_url(self, registry: str) -> str:
        """``<region>-docker.pkg.dev/<project>/<repository>``: the Artifact Registry repository's path."""
        assert self.gcp is not None
        return f"{self.gcp.region}-docker.pkg.dev/{self.gcp.project_id}/{self.resource_name(registry)}"

    def github_role_name(self, purpose: Literal["deploy", "plan"]) -> str:
        """The IAM role (AWS) a workflow assumes through OIDC: ``deploy`` or read-only ``plan``."""
        return self.resource_name(f"github-{purpose}")

    def github_role_arn(self, purpose: Literal["deploy", "plan"]) -> str | None:
        if self.aws is None:
            return None
        return f"arn:aws:iam::{self.aws.account_id}:role/{self.github_role_name(purpose)}"

    def break_glass_role_arn(self) -> str | None:
        """The account's break-glass administrator (``infra bootstrap`` makes it, trusted by the account
        with MFA): a cluster administrator and a user of the state key when CI is not the way in."""
        if self.aws is None:
            return None
        return f"arn:aws:iam::{self.aws.account_id}:role/{self.resource_name('break-glass')}"

    def github_oidc_provider_arn(self) -> str | None:
        """The account's IAM OIDC provider for GitHub Actions (``infra bootstrap`` makes it)."""
        if self.aws is None:
            return None
        return f"arn:aws:iam::{self.aws.account_id}:oidc-provider/{GITHUB_OIDC_HOST}"

    def permissions_boundary_arn(self) -> str | None:
        """The permissions boundary every role of the environment carries (the deploy role and every
        role the stacks create): no role can grant itself or another more than the boundary allows."""
        if self.aws is None:
            return None
        return f"arn:aws:iam::{self.aws.account_id}:policy/{self.resource_name('boundary')}"

    @property
    def state_key_alias(self) -> str:
        """The customer-managed KMS key of the S3 state (``infra bootstrap`` makes it)."""
        return f"alias/{self.resource_name('tfstate')}"

    @property
    def state_key_alias_arn(self) -> str | None:
        """The alias's ARN, which the S3 backend's ``kms_key_id`` accepts (hashicorp/terraform
        internal/backend/remote-state/s3/validate.go, ``validateKMSKeyARN``: key or alias ARNs)."""
        if self.aws is None or self.state.backend != "s3":
            return None
        return f"arn:aws:kms:{self.state_region}:{self.aws.account_id}:{self.state_key_alias}"

    def github_environment(self, purpose: Literal["deploy", "plan"]) -> str:
        """The GitHub Environment a job uses: ``<env>`` for the deploy, ``<env>-plan`` for a pull
        request's plan of an environment that waits for an approval (its reviewers approve the plan)."""
        return self.name if purpose == "deploy" else f"{self.name}-plan"

    def oidc_subject(self, *, context: str, workflow: Workflow, ref: str) -> str:
        """The OIDC ``sub`` of a job under the repository's template (:data:`OIDC_CLAIM_KEYS`):
        ``repo:<repo>:<context>:job_workflow_ref:<repo>/.github/workflows/<workflow>@<ref>``."""
        assert self.ci is not None, "an environment without a ci section has no GitHub identity"
        repo = self.ci.repository
        return f"repo:{repo}:{context}:job_workflow_ref:{repo}/.github/workflows/{workflow}@{ref}"

    def gcp_service_account(self, purpose: Literal["deploy", "plan"]) -> str | None:
        """The service account a workflow impersonates through Workload Identity Federation."""
        if self.gcp is None:
            return None
        return f"{self.resource_name(purpose)}@{self.gcp.project_id}.iam.gserviceaccount.com"

    def model_bucket(self, cloud: Cloud, *, replica: bool = False) -> str:
        """The model registry's bucket on ``cloud`` (globally unique: the account or project in it)."""
        if cloud == "aws":
            assert self.aws is not None
            return self.resource_name(f"models-{self.aws.account_id}" + ("-replica" if replica else ""))
        assert self.gcp is not None
        return self.resource_name(f"models-{self.gcp.project_id}")

    @property
    def state_key(self) -> str:
        return f"{self.project}/{self.name}/terraform.tfstate"

    @property
    def state_region(self) -> str | None:
        if self.state.backend != "s3":
            return None
        return self.state.region or (self.aws.region if self.aws else None)

    @property
    def all_tags(self) -> dict[str, str]:
        """Declared tags plus the derived ones every resource carries."""
        return {**self.tags, "environment": self.name, "project": self.project, "managed-by": "cdktf"}
