"""Artifact Registry Docker repositories with immutable tags and cleanup policies."""

from __future__ import annotations

from cdktf_cdktf_provider_google.artifact_registry_repository import (
    ArtifactRegistryRepository,
    ArtifactRegistryRepositoryCleanupPolicies,
    ArtifactRegistryRepositoryCleanupPoliciesCondition,
    ArtifactRegistryRepositoryCleanupPoliciesMostRecentVersions,
    ArtifactRegistryRepositoryDockerConfig,
)
from constructs import Construct

from environments.schema import ArtifactRegistry, Environment


class Registry(Construct):
    """Exposes ``repository`` and ``url`` (``<region>-docker.pkg.dev/<project>/<repo>``)."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, cfg: ArtifactRegistry) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        repo_id = env.resource_name(cfg.name)
        self.repository = ArtifactRegistryRepository(
            self,
            "repository",
            repository_id=repo_id,
            location=env.gcp.region,
            format="DOCKER",
            description=f"{cfg.name} images of {env.name}",
            docker_config=ArtifactRegistryRepositoryDockerConfig(immutable_tags=True),
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
        self.url = env.artifact_registry_url(cfg.name)
