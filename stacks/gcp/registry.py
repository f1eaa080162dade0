"""Artifact Registry Docker repositories: immutable tags, cleanup policies, a customer-managed key."""

from __future__ import annotations

from cdktf_cdktf_provider_google.artifact_registry_repository import (
    ArtifactRegistryRepository,
    ArtifactRegistryRepositoryCleanupPolicies,
    ArtifactRegistryRepositoryCleanupPoliciesCondition,
    ArtifactRegistryRepositoryCleanupPoliciesMostRecentVersions,
    ArtifactRegistryRepositoryDockerConfig,
    ArtifactRegistryRepositoryVulnerabilityScanningConfig,
)
from cdktf_cdktf_provider_google.artifact_registry_repository_iam_member import ArtifactRegistryRepositoryIamMember
from constructs import Construct

from environments.schema import ArtifactRegistry, Environment
from stacks.gcp.kms import ArtifactRegistryKey


class Registry(Construct):
    """Exposes ``repository`` and ``url`` (``<region>-docker.pkg.dev/<project>/<repo>``)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        cfg: ArtifactRegistry,
        key: ArtifactRegistryKey | None,
        promotion_reader: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        repo_id = env.resource_name(cfg.name)
        cmek = key if cfg.kms else None
        self.repository = ArtifactRegistryRepository(
            self,
            "repository",
            repository_id=repo_id,
            location=env.gcp.region,
            format="DOCKER",
            description=f"{cfg.name} images of {env.name}",
            docker_config=ArtifactRegistryRepositoryDockerConfig(immutable_tags=True),
            # scanned on push by Artifact Analysis (the environment stack enables its API)
            vulnerability_scanning_config=ArtifactRegistryRepositoryVulnerabilityScanningConfig(enablement_config="INHERITED"),
            kms_key_name=cmek.key_id if cmek else None,
            depends_on=list(cmek.grants) if cmek else None,
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                ArtifactRegistryRepositoryCleanupPolicies(
                    id="delete-untagged",
                    action="DELETE",
                    condition=ArtifactRegistryRepositoryCleanupPoliciesCondition(
                        tag_state="UNTAGGED", older_than=f"{cfg.delete_untagged_after_days * 86400}s"
                    ),
                ),
                ArtifactRegistryRepositoryCleanupPolicies(
                    id="delete-old",
                    action="DELETE",
                    condition=ArtifactRegistryRepositoryCleanupPoliciesCondition(
                        tag_state="ANY", older_than=f"{cfg.delete_after_days * 86400}s"
                    ),
                ),
                # KEEP wins over DELETE: the most recent versions survive however old they are
                ArtifactRegistryRepositoryCleanupPolicies(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=ArtifactRegistryRepositoryCleanupPoliciesMostRecentVersions(keep_count=cfg.keep_recent),
                ),
            ],
        )
        if promotion_reader:
            # the next environment's deploy service account copies a promoted image by digest (docker
            # buildx imagetools create) from here into its own repository
            ArtifactRegistryRepositoryIamMember(
                self,
                "promotion-pulls",
                project=env.gcp.project_id,
                location=env.gcp.region,
                repository=self.repository.name,
                role="roles/artifactregistry.reader",
                member=f"serviceAccount:{promotion_reader}",
            )
        self.url = env.artifact_registry_url(cfg.name)
