"""``EnvironmentStack``: one environment (both clouds) built only from its :class:`Environment`."""

from __future__ import annotations

from cdktf import Aspects, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_google.data_google_project import DataGoogleProject
from cdktf_cdktf_provider_google.provider import GoogleProvider
from constructs import Construct

from app.layout import registry_uri
from environments import facts
from environments.schema import Environment
from stacks.aspects import PermissionsBoundary, TagEverything
from stacks.aws.autoscaler import AutoscalerIdentity
from stacks.aws.budget import Budget as AwsBudget
from stacks.aws.ci_runner import CiRunner
from stacks.aws.cluster import Cluster as EksClusterConstruct
from stacks.aws.endpoints import Endpoint
from stacks.aws.kms import EnvironmentKey
from stacks.aws.model_registry import ModelRegistry
from stacks.aws.monitoring import Function, GpuGroup
from stacks.aws.monitoring import Monitoring as AwsMonitoring
from stacks.aws.network import Network as AwsNetwork
from stacks.aws.node_groups import GpuNodeGroup
from stacks.aws.registry import repository_arn
from stacks.gcp.budget import Budget as GcpBudget
from stacks.gcp.build import BuildIdentity, Trigger
from stacks.gcp.cluster import Cluster as GkeClusterConstruct
from stacks.gcp.model_registry import ModelRegistry as GcsModelRegistry
from stacks.gcp.monitoring import GpuPool
from stacks.gcp.monitoring import Monitoring as GcpMonitoring
from stacks.gcp.network import Network as GcpNetwork
from stacks.gcp.node_pools import NodePool
from stacks.serving import model_environment
from stacks.state import configure_backend


class EnvironmentStack(TerraformStack):
    """Construct ids are part of Terraform addresses: renaming one replaces live resources."""

    def __init__(self, scope: Construct, env: Environment, *, promotes_to: Environment | None = None) -> None:
        super().__init__(scope, env.name)
        self.env = env
        self.promotes_to = promotes_to
        # the next environment's deploy role copies promoted models out of this one's registry
        self.promotion_reader = (
            promotes_to.github_role_arn("deploy") if promotes_to and promotes_to.aws and promotes_to.models and env.models else None
        )
        configure_backend(self, env)
        if env.aws:
            self._aws(env)
        if env.gcp:
            self._gcp(env)
        Aspects.of(self).add(TagEverything(env.all_tags))
        if boundary := env.permissions_boundary_arn():
            Aspects.of(self).add(PermissionsBoundary(boundary))

    def _aws(self, env: Environment) -> None:
        assert env.aws is not None
        AwsProvider(self, "aws", region=env.aws.region, allowed_account_ids=[env.aws.account_id])
        key = EnvironmentKey(self, "aws-kms", env=env, model_reader=self.promotion_reader)
        AwsBudget(self, "aws-budget", env=env)
        network = AwsNetwork(self, "aws-network", env=env, key=key)
        cluster = EksClusterConstruct(self, "aws-eks", env=env, network=network, key=key) if env.aws.cluster else None
        gpu_groups: list[GpuGroup] = []
        if cluster is not None and env.aws.cluster is not None:
            for group in env.aws.cluster.gpu_node_groups:
                built = GpuNodeGroup(
                    self,
                    f"aws-gpu-{group.name}",
                    env=env,
                    cluster=cluster.cluster,
                    role=cluster.node_role,
                    network=network,
                    cfg=group,
                    after=cluster.before_nodes,
                )
                cluster.nodes.append(built.node_group)
                gpu_groups.append(GpuGroup(group.name, env.eks_node_group_name(group.name), built.asg_name, group.max))
            AutoscalerIdentity(self, "aws-cluster-autoscaler", env=env, cluster=cluster.cluster, cluster_name=cluster.name)
            if env.has_ci_runner:
                CiRunner(self, "aws-ci-runner", env=env, network=network, cluster=cluster.cluster, key=key)
            TerraformOutput(self, "eks_cluster_name", value=cluster.cluster.name)
            TerraformOutput(self, "eks_cluster_endpoint", value=cluster.cluster.endpoint)
        models = None
        if env.models:
            replica = None
            if env.models.replica_region:
                replica = AwsProvider(
                    self, "aws-replica", alias="replica", region=env.models.replica_region, allowed_account_ids=[env.aws.account_id]
                )
            models = ModelRegistry(
                self,
                "aws-models",
                env=env,
                key=key,
                cluster=cluster.cluster if cluster else None,
                replica_provider=replica,
                promotion_reader=self.promotion_reader,
            )
            TerraformOutput(self, "model_registry_s3", value=registry_uri("s3", models.name, env.models.name))
        functions = []
        for endpoint in env.aws.endpoints:
            ep = Endpoint(
                self,
                f"aws-lambda-{endpoint.name}",
                env=env,
                cfg=endpoint,
                repository_url=env.image_repository("aws", endpoint.repository),  # <env>-registries made it
                repository_arn=repository_arn(env, endpoint.repository),
                network=network,
                key=key,
                model_read=models.read_statements(key.arn, env.models.name) if models and env.models else None,
                model_env=model_environment(env, "aws") if env.models else None,
            )
            functions.append(Function(endpoint.name, env.resource_name(endpoint.name)))
            TerraformOutput(self, f"lambda_{endpoint.name.replace('-', '_')}_url", value=ep.url.function_url)
        if env.monitoring:
            AwsMonitoring(
                self,
                "aws-monitoring",
                env=env,
                key=key,
                cluster=cluster.cluster if cluster else None,
                cluster_name=cluster.name if cluster else None,
                # Container Insights' add-on runs on nodes with its Pod Identity role: it waits for both
                after=[*cluster.nodes, cluster.pod_identity_agent] if cluster else [],
                gpu_groups=gpu_groups,
                functions=functions,
            )

    def _gcp(self, env: Environment) -> None:
        assert env.gcp is not None
        GoogleProvider(self, "google", project=env.gcp.project_id, region=env.gcp.region)
        project = DataGoogleProject(self, "gcp-project", project_id=env.gcp.project_id)
        GcpBudget(self, "gcp-budget", env=env, project_number=project.number)
        network = GcpNetwork(self, "gcp-network", env=env)
        cluster_name = None
        gke = None
        gpu_pools: list[GpuPool] = []
        if env.gcp.cluster:
            gke = cluster = GkeClusterConstruct(self, "gcp-gke", env=env, network=network)
            cluster_name = env.resource_name("gke")
            for pool in env.gcp.cluster.gpu_node_pools:
                zones, _ = facts.gke_zone_count(env.gcp.region, list(pool.zones))  # the one zone rule (cost and summary too)
                gpu_pools.append(GpuPool(pool.name, env.gke_gpu_pool_name(pool.name), pool.max, zones))
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
            identity = BuildIdentity(self, "gcp-build-identity", env=env)
            for trigger in env.gcp.build_triggers:
                Trigger(self, f"gcp-build-{trigger.name}", env=env, cfg=trigger, identity=identity)
        if env.models:
            models = GcsModelRegistry(
                self,
                "gcp-models",
                env=env,
                project_number=project.number,
                cluster=gke.cluster if gke else None,
                promotion_reader=self.promotes_to.gcp_service_account("deploy") if self.promotes_to and self.promotes_to.gcp else None,
            )
            TerraformOutput(self, "model_registry_gcs", value=registry_uri("gs", models.bucket.name, env.models.name))
        if env.monitoring:
            GcpMonitoring(self, "gcp-monitoring", env=env, cluster_name=cluster_name, gpu_pools=gpu_pools)
