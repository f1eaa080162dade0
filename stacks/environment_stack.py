"""``EnvironmentStack``: one environment (both clouds) built only from its :class:`Environment`."""

from __future__ import annotations

from cdktf import Aspects, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_google.data_google_project import DataGoogleProject
from cdktf_cdktf_provider_google.project_service import ProjectService
from cdktf_cdktf_provider_google.provider import GoogleProvider
from constructs import Construct

from environments.schema import Environment
from stacks.aspects import TagEverything
from stacks.aws.autoscaler import AutoscalerIdentity
from stacks.aws.budget import Budget as AwsBudget
from stacks.aws.cluster import Cluster as EksClusterConstruct
from stacks.aws.endpoints import Endpoint
from stacks.aws.kms import EnvironmentKey
from stacks.aws.network import Network as AwsNetwork
from stacks.aws.node_groups import GpuNodeGroup
from stacks.aws.registry import Registry as EcrRegistry
from stacks.gcp.budget import Budget as GcpBudget
from stacks.gcp.build import BuildIdentity, Trigger
from stacks.gcp.cluster import Cluster as GkeClusterConstruct
from stacks.gcp.kms import ArtifactRegistryKey
from stacks.gcp.network import Network as GcpNetwork
from stacks.gcp.node_pools import NodePool
from stacks.gcp.registry import Registry as ArRegistry
from stacks.state import configure_backend


class EnvironmentStack(TerraformStack):
    """Construct ids are part of Terraform addresses: renaming one replaces live resources."""

    def __init__(self, scope: Construct, env: Environment) -> None:
        super().__init__(scope, env.name)
        self.env = env
        configure_backend(self, env)
        if env.aws:
            self._aws(env)
        if env.gcp:
            self._gcp(env)
        Aspects.of(self).add(TagEverything(env.all_tags))

    def _aws(self, env: Environment) -> None:
        assert env.aws is not None
        AwsProvider(self, "aws", region=env.aws.region, allowed_account_ids=[env.aws.account_id])
        key = EnvironmentKey(self, "aws-kms", env=env)
        AwsBudget(self, "aws-budget", env=env)
        network = AwsNetwork(self, "aws-network", env=env, key=key)
        registries = {r.name: EcrRegistry(self, f"aws-ecr-{r.name}", env=env, cfg=r, key=key) for r in env.aws.registries}
        if env.aws.cluster:
            cluster = EksClusterConstruct(self, "aws-eks", env=env, network=network, key=key)
            for group in env.aws.cluster.gpu_node_groups:
                GpuNodeGroup(
                    self, f"aws-gpu-{group.name}", env=env, cluster=cluster.cluster, role=cluster.node_role, network=network, cfg=group
                )
            AutoscalerIdentity(self, "aws-cluster-autoscaler", env=env, cluster=cluster.cluster, cluster_name=cluster.name)
            TerraformOutput(self, "eks_cluster_name", value=cluster.cluster.name)
            TerraformOutput(self, "eks_cluster_endpoint", value=cluster.cluster.endpoint)
        for endpoint in env.aws.endpoints:
            ep = Endpoint(
                self,
                f"aws-lambda-{endpoint.name}",
                env=env,
                cfg=endpoint,
                registry=registries[endpoint.repository],
                network=network,
                key=key,
            )
            TerraformOutput(self, f"lambda_{endpoint.name.replace('-', '_')}_url", value=ep.url.function_url)
        for name, registry in registries.items():
            TerraformOutput(self, f"ecr_{name.replace('-', '_')}_url", value=registry.repository_url)

    def _gcp(self, env: Environment) -> None:
        assert env.gcp is not None
        GoogleProvider(self, "google", project=env.gcp.project_id, region=env.gcp.region)
        project = DataGoogleProject(self, "gcp-project", project_id=env.gcp.project_id)
        GcpBudget(self, "gcp-budget", env=env, project_number=project.number)
        network = GcpNetwork(self, "gcp-network", env=env)
        if env.gcp.registries:
            # Artifact Analysis scans every image pushed to the project's repositories (billed per image)
            ProjectService(self, "gcp-container-scanning", service="containerscanning.googleapis.com", disable_on_destroy=False)
        key = (
            ArtifactRegistryKey(self, "gcp-kms", env=env, project_number=project.number) if any(r.kms for r in env.gcp.registries) else None
        )
        registries = {r.name: ArRegistry(self, f"gcp-ar-{r.name}", env=env, cfg=r, key=key) for r in env.gcp.registries}
        if env.gcp.cluster:
            cluster = GkeClusterConstruct(self, "gcp-gke", env=env, network=network)
            for pool in env.gcp.cluster.gpu_node_pools:
                NodePool(
                    self,
                    f"gcp-gpu-{pool.name}",
                    env=env,
                    cluster=cluster.cluster,
                    service_account=cluster.node_service_account.email,
                    name=env.gke_gpu_pool_name(pool.name),
                    cfg=pool,
                )
            TerraformOutput(self, "gke_cluster_name", value=cluster.cluster.name)
        if env.gcp.build_triggers:
            identity = BuildIdentity(self, "gcp-build-identity", env=env, registries=list(registries.values()))
            for trigger in env.gcp.build_triggers:
                Trigger(self, f"gcp-build-{trigger.name}", env=env, cfg=trigger, identity=identity, registry=registries[trigger.registry])
        for name, registry in registries.items():
            TerraformOutput(self, f"artifact_registry_{name.replace('-', '_')}_url", value=registry.url)
