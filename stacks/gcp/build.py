"""Cloud Build triggers that build the app image on pushes to the environment's branch."""

from __future__ import annotations

import re

from cdktf_cdktf_provider_google.artifact_registry_repository_iam_member import ArtifactRegistryRepositoryIamMember
from cdktf_cdktf_provider_google.cloudbuild_trigger import CloudbuildTrigger, CloudbuildTriggerGithub, CloudbuildTriggerGithubPush
from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from constructs import Construct

from environments.schema import BuildTrigger, Environment
from stacks.gcp.registry import Registry


class BuildIdentity(Construct):
    """The service account the triggers run as: writes the environment's images and its logs."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, registries: list[Registry]) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        self.account = ServiceAccount(self, "account", account_id=env.resource_name("build"), display_name=f"Cloud Build of {env.name}")
        member = f"serviceAccount:{self.account.email}"
        ProjectIamMember(self, "log-writer", project=env.gcp.project_id, role="roles/logging.logWriter", member=member)
        for registry in registries:
            ArtifactRegistryRepositoryIamMember(
                self,
                f"writer-{registry.node.id}",
                project=env.gcp.project_id,
                location=env.gcp.region,
                repository=registry.repository.name,
                role="roles/artifactregistry.writer",
                member=member,
            )
        self.id = self.account.id


class Trigger(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, env: Environment, cfg: BuildTrigger, identity: BuildIdentity, registry: Registry
    ) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        self.trigger = CloudbuildTrigger(
            self,
            "trigger",
            name=env.resource_name(cfg.name),
            location=env.gcp.region,
            description=f"Build {cfg.name} on pushes to {env.branch}",
            github=CloudbuildTriggerGithub(
                owner=cfg.github_owner, name=cfg.github_repo, push=CloudbuildTriggerGithubPush(branch=f"^{re.escape(env.branch)}$")
            ),
            filename=cfg.filename,
            included_files=list(cfg.included_files) or None,
            service_account=identity.id,
            substitutions={"_ENVIRONMENT": env.name, "_REGION": env.gcp.region, "_IMAGE_REPOSITORY": registry.url},
        )
