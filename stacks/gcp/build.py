"""Cloud Build triggers that build the app image on pushes to the environment's branch.

Triggers use a 2nd-generation repository connection (``google_cloudbuildv2_repository`` under the
region's connection, which is connected once by hand): the 1st-generation ``github`` block needs a
repository mapping that only the console makes ("Repository mapping does not exist",
hashicorp/terraform-provider-google#12913, per location). The trigger runs as the build service
account, which the deploy service account must be allowed to act as (Cloud Build docs,
"Configure user-specified service accounts")."""

from __future__ import annotations

import re

from cdktf_cdktf_provider_google.artifact_registry_repository_iam_member import ArtifactRegistryRepositoryIamMember
from cdktf_cdktf_provider_google.cloudbuild_trigger import (
    CloudbuildTrigger,
    CloudbuildTriggerRepositoryEventConfig,
    CloudbuildTriggerRepositoryEventConfigPush,
)
from cdktf_cdktf_provider_google.cloudbuildv2_repository import Cloudbuildv2Repository
from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from constructs import Construct

from environments.schema import BuildTrigger, Environment


class BuildIdentity(Construct):
    """The service account the triggers run as: writes the environment's images and its logs."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        self.account = ServiceAccount(self, "account", account_id=env.resource_name("build"), display_name=f"Cloud Build of {env.name}")
        member = f"serviceAccount:{self.account.email}"
        ProjectIamMember(self, "log-writer", project=env.gcp.project_id, role="roles/logging.logWriter", member=member)
        for registry in env.gcp.registries:  # made by <env>-registries, named by the one naming rule
            ArtifactRegistryRepositoryIamMember(
                self,
                f"writer-gcp-ar-{registry.name}",
                project=env.gcp.project_id,
                location=env.gcp.region,
                repository=env.resource_name(registry.name),
                role="roles/artifactregistry.writer",
                member=member,
            )
        self.id = self.account.id
        self.act_as = ServiceAccountIamMember(
            self,
            "deploy-acts-as",
            service_account_id=self.account.name,
            role="roles/iam.serviceAccountUser",
            member=f"serviceAccount:{env.gcp_service_account('deploy')}",
        )


class Trigger(Construct):
    def __init__(self, scope: Construct, id_: str, *, env: Environment, cfg: BuildTrigger, identity: BuildIdentity) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None and env.gcp.build_connection is not None
        self.repository = Cloudbuildv2Repository(
            self,
            "repository",
            name=f"{cfg.github_owner}-{cfg.github_repo}".lower(),
            location=env.gcp.region,
            parent_connection=f"projects/{env.gcp.project_id}/locations/{env.gcp.region}/connections/{env.gcp.build_connection}",
            remote_uri=f"https://github.com/{cfg.github_owner}/{cfg.github_repo}.git",
        )
        self.trigger = CloudbuildTrigger(
            self,
            "trigger",
            name=env.resource_name(cfg.name),
            location=env.gcp.region,
            description=f"Build {cfg.name} on pushes to {env.branch}",
            repository_event_config=CloudbuildTriggerRepositoryEventConfig(
                repository=self.repository.id, push=CloudbuildTriggerRepositoryEventConfigPush(branch=f"^{re.escape(env.branch)}$")
            ),
            filename=cfg.filename,
            included_files=list(cfg.included_files) or None,
            service_account=identity.id,
            substitutions={
                "_ENVIRONMENT": env.name,
                "_REGION": env.gcp.region,
                "_IMAGE_REPOSITORY": env.artifact_registry_url(cfg.registry),
            },
            depends_on=[identity.act_as],
        )
