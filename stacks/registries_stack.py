"""``<env>-registries``: the environment's image registries (ECR, Artifact Registry) and their keys.

Applied first, before anything pushes to them or runs from them: a Lambda function or a Kubernetes
workload can only be created from an image that exists, and an image can only be pushed to a
repository that exists. The deploy therefore applies this stack, pushes (or, on a promotion, copies
by digest) the images the environment pins, checks they are there (``infra preflight --images``),
and only then applies ``<env>`` and ``<env>-workloads``.
"""

from __future__ import annotations

import json

from cdktf import Aspects, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_google.data_google_project import DataGoogleProject
from cdktf_cdktf_provider_google.project_service import ProjectService
from cdktf_cdktf_provider_google.provider import GoogleProvider
from constructs import Construct

from environments.schema import Environment
from stacks.aspects import PermissionsBoundary, TagEverything
from stacks.aws.kms import account_administers
from stacks.aws.registry import Registry as EcrRegistry
from stacks.gcp.kms import ArtifactRegistryKey
from stacks.gcp.registry import Registry as ArRegistry
from stacks.state import configure_backend


def has_registries(env: Environment) -> bool:
    return env.has_registries_stack


class RegistriesStack(TerraformStack):
    def __init__(self, scope: Construct, env: Environment, *, promotes_to: Environment | None = None) -> None:
        super().__init__(scope, f"{env.name}-registries")
        configure_backend(self, env, key_suffix="registries")
        if env.aws and env.aws.registries:
            self._aws(env, promotes_to)
        if env.gcp and env.gcp.registries:
            self._gcp(env, promotes_to)
        Aspects.of(self).add(TagEverything(env.all_tags))
        if boundary := env.permissions_boundary_arn():
            Aspects.of(self).add(PermissionsBoundary(boundary))

    def _aws(self, env: Environment, promotes_to: Environment | None) -> None:
        assert env.aws is not None
        AwsProvider(self, "aws", region=env.aws.region, allowed_account_ids=[env.aws.account_id])
        key = KmsKey(
            self,
            "aws-ecr-key",
            description=f"{env.resource_name('registry')}: the ECR repositories of {env.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # ECR encrypts through grants it creates with the caller's permissions; pullers need no
            # kms: permission (ECR user guide, encryption-at-rest)
            policy=json.dumps({"Version": "2012-10-17", "Statement": [account_administers(env.aws.account_id)]}),
        )
        KmsAlias(self, "aws-ecr-key-alias", name=f"alias/{env.resource_name('registry')}", target_key_id=key.key_id)
        reader = promotes_to.github_role_arn("deploy") if promotes_to and promotes_to.aws else None
        lambda_repositories = {ep.repository for ep in env.aws.endpoints}
        for r in env.aws.registries:
            registry = EcrRegistry(
                self,
                f"aws-ecr-{r.name}",
                env=env,
                cfg=r,
                key_arn=key.arn,
                lambda_pulls=r.name in lambda_repositories,
                promotion_reader=reader,
            )
            TerraformOutput(self, f"ecr_{r.name.replace('-', '_')}_url", value=registry.repository_url)

    def _gcp(self, env: Environment, promotes_to: Environment | None) -> None:
        assert env.gcp is not None
        GoogleProvider(self, "google", project=env.gcp.project_id, region=env.gcp.region)
        project = DataGoogleProject(self, "gcp-project", project_id=env.gcp.project_id)
        # Artifact Analysis scans every image pushed to the project's repositories (billed per image)
        ProjectService(self, "gcp-container-scanning", service="containerscanning.googleapis.com", disable_on_destroy=False)
        key = (
            ArtifactRegistryKey(self, "gcp-kms", env=env, project_number=project.number) if any(r.kms for r in env.gcp.registries) else None
        )
        reader = promotes_to.gcp_service_account("deploy") if promotes_to and promotes_to.gcp else None
        for r in env.gcp.registries:
            registry = ArRegistry(self, f"gcp-ar-{r.name}", env=env, cfg=r, key=key, promotion_reader=reader)
            TerraformOutput(self, f"artifact_registry_{r.name.replace('-', '_')}_url", value=registry.url)
