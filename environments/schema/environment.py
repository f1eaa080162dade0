"""The environment: the whole file, its cross-section checks, and what it derives."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, model_validator

from environments import facts
from environments.schema.aws import AwsConfig
from environments.schema.gcp import GcpConfig
from environments.schema.identity import Identity
from environments.schema.platform import (
    DERIVED_TAGS,
    REQUIRED_TAGS,
    Budget,
    Ci,
    ModelRegistry,
    Monitoring,
    Policy,
    Serving,
    StateBackend,
    Usage,
)
from environments.schema.types import Cloud, EnvName, FieldError, LabelKey, LabelValue, Model, pairs


class Environment(Identity, Model):
    name: EnvName
    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,11}$")]
    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")]
    requires_approval: bool
    promotes_to: EnvName | None = None
    tags: dict[LabelKey, LabelValue]
    aws: AwsConfig | None = None
    gcp: GcpConfig | None = None
    state: StateBackend
    budget: Budget
    usage: Usage = Usage()
    serving: Serving | None = None
    policy: Policy = Policy()
    ci: Ci | None = None
    models: ModelRegistry | None = None
    monitoring: Monitoring | None = None

    @model_validator(mode="after")
    def _checks(self) -> Environment:
        if self.aws is None and self.gcp is None:
            raise FieldError("aws", "an environment needs at least one cloud section (aws or gcp)")
        for key in REQUIRED_TAGS:
            if key not in self.tags:
                raise FieldError("tags", f"missing the {key!r} tag; every environment declares {list(REQUIRED_TAGS)}")
        for key in DERIVED_TAGS:
            if key in self.tags:
                raise FieldError(("tags", key), f"{key!r} is derived from the environment; remove it")
        if (self.name == "production" or self.branch == "main") and not self.requires_approval:
            raise FieldError("requires_approval", "production deploys must wait for an approval; set requires_approval: true")
        if self.state.backend == "s3":
            if self.state.region is None and self.aws is None:
                raise FieldError(("state", "region"), "an S3 state backend needs a region when the environment has no aws section")
            if self.state.region is not None and self.state.region not in facts.aws_regions():
                raise FieldError(("state", "region"), f"unknown AWS region {self.state.region!r}")
        pools = set(self.gpu_pool_names())
        for key in self.usage.gpu_node_hours:
            if key not in pools:
                raise FieldError(("usage", "gpu_node_hours", key), f"no GPU pool named {key!r}; one of {sorted(pools) or 'none defined'}")
        self._check_cidr_overlaps()
        clouds = [c for c in ("aws", "gcp") if getattr(self, c) is not None]
        for cloud in self.budget.by_cloud:
            if cloud not in clouds:
                raise FieldError(("budget", "by_cloud", cloud), f"this environment has no {cloud} section; split among {clouds}")
        if len(clouds) > 1 and set(self.budget.by_cloud) != set(clouds):
            raise FieldError(("budget", "by_cloud"), f"split monthly_usd between {clouds}, e.g. {{aws: 900, gcp: 600}}")
        if self.serving:
            self._check_serving(self.serving)
        if self.models and 0 < self.models.gcs_retention_days < 7:
            raise FieldError(("models", "gcs_retention_days"), "GCS soft delete keeps objects 7 to 90 days; use 0 to turn it off, or 7..90")
        if self.models and self.models.replica_region is not None:
            if self.aws is None:
                raise FieldError(("models", "replica_region"), "a replica region needs the aws section; remove it")
            if self.models.replica_region not in facts.aws_regions():
                raise FieldError(("models", "replica_region"), f"unknown AWS region {self.models.replica_region!r}")
            if self.models.replica_region == self.aws.region:
                raise FieldError(("models", "replica_region"), f"the replica must be in another region than {self.aws.region}")
        if self.gcp and len(self.resource_name("deploy")) > 30:
            raise FieldError(
                "name", f"{self.resource_name('deploy')!r} is too long for a GCP service account id (30); shorten project or name"
            )
        return self

    def _check_serving(self, serving: Serving) -> None:
        clusters = self.cluster_clouds()
        if not clusters:
            raise FieldError("serving", "serving needs a Kubernetes cluster (aws.cluster or gcp.cluster)")
        for cloud in clusters:
            cfg = self.aws if cloud == "aws" else self.gcp
            assert cfg is not None
            registries = sorted(r.name for r in cfg.registries)
            if serving.registry not in registries:
                raise FieldError(
                    ("serving", "registry"),
                    f"{serving.registry!r} is not a {cloud} registry of this environment; one of {registries or 'none'}",
                )
            pools = [p.split("/", 1)[1] for p in self.gpu_pool_names() if p.startswith(f"{cloud}/")]
            if serving.gpu_pool is not None and serving.gpu_pool not in pools:
                raise FieldError(
                    ("serving", "gpu_pool"), f"{serving.gpu_pool!r} is not a GPU pool of the {cloud} cluster; one of {pools or 'none'}"
                )
        for i, ep in enumerate(self.aws.endpoints if self.aws else []):
            if ep.repository == serving.registry and ep.image_ref == serving.image_ref:
                raise FieldError(
                    ("aws", "endpoints", i, "image_tag"),
                    f"{ep.image_ref.lstrip(':@')!r} is the service image, which Lambda cannot run; use its Lambda variant "
                    f"({(serving.image_tag or 'TAG') + '-lambda'!r}, built with --target lambda)",
                )

    @property
    def has_registries_stack(self) -> bool:
        """``<env>-registries``: image registries on either cloud (applied before ``<env>``)."""
        return bool((self.aws and self.aws.registries) or (self.gcp and self.gcp.registries))

    @property
    def has_workloads_stack(self) -> bool:
        """``<env>-workloads``: an EKS cluster (device plugin, autoscaler) or any cluster with a model server."""
        clouds = self.cluster_clouds()
        return "aws" in clouds or (bool(clouds) and self.serving is not None)

    def stack_names(self) -> list[str]:
        """The environment's stacks in apply order."""
        names = [f"{self.name}-registries"] if self.has_registries_stack else []
        return [*names, self.name, *([f"{self.name}-workloads"] if self.has_workloads_stack else [])]

    @property
    def has_ci_runner(self) -> bool:
        """The CodeBuild-hosted runner in the VPC: an EKS cluster (its API is private) and a ci section."""
        return self.ci is not None and "aws" in self.cluster_clouds()

    @property
    def github_connection_name(self) -> str:
        """The CodeConnections (CodeStar Connections) connection to GitHub the runner's CodeBuild
        project uses: made PENDING by ``infra bootstrap``, completed by hand, read by the stack."""
        return self.resource_name("github")

    @property
    def ci_runner_name(self) -> str:
        """The CodeBuild project hosting the GitHub Actions runner inside the VPC (an EKS
        environment with a ci section); ``runs-on: codebuild-<name>-<run id>-<attempt>``."""
        return self.resource_name("ci-runner")

    def cluster_clouds(self) -> list[Cloud]:
        """The clouds on which this environment has a Kubernetes cluster."""
        out: list[Cloud] = []
        if self.aws and self.aws.cluster:
            out.append("aws")
        if self.gcp and self.gcp.cluster:
            out.append("gcp")
        return out

    def _check_cidr_overlaps(self) -> None:
        for (a_path, a), (b_path, b) in pairs(self.cidrs()):
            if ipaddress.IPv4Network(a).overlaps(ipaddress.IPv4Network(b)):
                raise FieldError(b_path, f"{b} overlaps {'.'.join(map(str, a_path))} ({a}); give each range its own space")

    def cidrs(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every address range the environment claims, with its field path."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        if self.aws:
            out.append((("aws", "network", "cidr"), self.aws.network.cidr))
        if self.gcp:
            net = self.gcp.network
            out += [
                (("gcp", "network", "subnet_cidr"), net.subnet_cidr),
                (("gcp", "network", "pods_cidr"), net.pods_cidr),
                (("gcp", "network", "services_cidr"), net.services_cidr),
            ]
            if self.gcp.cluster and self.gcp.cluster.private_nodes:
                out.append((("gcp", "cluster", "master_cidr"), self.gcp.cluster.master_cidr))
        return out

    def gpu_pool_names(self) -> list[str]:
        names = []
        if self.aws and self.aws.cluster:
            names += [f"aws/{g.name}" for g in self.aws.cluster.gpu_node_groups]
        if self.gcp and self.gcp.cluster:
            names += [f"gcp/{p.name}" for p in self.gcp.cluster.gpu_node_pools]
        return names

    def budget_usd(self, cloud: Cloud) -> float:
        """The monthly budget of one cloud: its share, or everything when it is the only cloud."""
        return self.budget.by_cloud.get(cloud, self.budget.monthly_usd)
