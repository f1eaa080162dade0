"""The ``aws`` section: network, ECR repositories, the EKS cluster and its node groups, Lambda endpoints."""

from __future__ import annotations

import ipaddress
from datetime import date
from typing import Annotated, Literal

from pydantic import Field, model_validator

from environments import facts
from environments.schema.types import (
    Cidr,
    FieldError,
    ImageRef,
    K8sLabels,
    LogRetentionDays,
    Model,
    Name,
    Taint,
    ZoneName,
    check_scaling,
    unique_names,
)


class AwsNetwork(Model):
    """``zones`` are named, not counted: a data source listing "available" zones grows when AWS adds
    one (CKV_AWS_394), and GPU instance types are offered in some zones of a region only."""

    cidr: Cidr
    zones: Annotated[list[ZoneName], Field(min_length=2, max_length=6)]
    nat: Literal["single", "per_az"] = "single"
    flow_log_retention_days: LogRetentionDays = 365

    @model_validator(mode="after")
    def _room_for_subnets(self) -> AwsNetwork:
        if ipaddress.IPv4Network(self.cidr).prefixlen > 20:
            raise FieldError("cidr", f"{self.cidr} is too small for public and private subnets in every AZ; use /20 or larger")
        for i, zone in enumerate(self.zones):
            if zone in self.zones[:i]:
                raise FieldError(("zones", i), f"{zone!r} is listed twice; one subnet pair per zone")
        return self


class EcrRepository(Model):
    name: Name
    immutable_tags: bool = True
    scan_on_push: bool = True
    kms: bool = True
    keep_last: Annotated[int, Field(ge=1, le=10000)] = 30
    untagged_expire_days: Annotated[int, Field(ge=1, le=3650)] = 7


class EksNodeGroup(Model):
    instance_types: Annotated[list[str], Field(min_length=1)]
    capacity: Literal["on_demand", "spot"] = "on_demand"
    min: Annotated[int, Field(ge=0)]
    desired: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=1)]
    disk_gb: Annotated[int, Field(ge=20, le=16384)] = 50
    labels: K8sLabels = {}
    taints: Annotated[list[Taint], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _scaling(self) -> EksNodeGroup:
        check_scaling(self.min, self.desired, self.max)
        return self


GpuAmiType = Literal["AL2023_x86_64_NVIDIA", "AL2023_ARM_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA", "BOTTLEROCKET_ARM_64_NVIDIA"]


class EksGpuNodeGroup(EksNodeGroup):
    name: Name
    ami_type: GpuAmiType | None = None

    @model_validator(mode="after")
    def _gpu(self) -> EksGpuNodeGroup:
        archs = set()
        first: facts.AwsGpu | None = None
        for i, itype in enumerate(self.instance_types):
            gpu = facts.aws_gpu(itype)
            if gpu is None:
                raise FieldError(
                    ("instance_types", i), f"{itype!r} has no GPU; use a GPU instance type such as g6.xlarge, g5.xlarge or p5.48xlarge"
                )
            first = first or gpu
            shape, first_shape = (
                (gpu.model, gpu.count, gpu.vcpus, gpu.memory_gib),
                (first.model, first.count, first.vcpus, first.memory_gib),
            )
            if shape != first_shape:
                # the Cluster Autoscaler builds a group's node template from its first instance type: the
                # types "should have the same amount of RAM and number of CPU cores" and GPUs
                # (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md, Using Mixed Instances Policies)
                raise FieldError(
                    ("instance_types", i),
                    f"{itype!r} has {gpu.count} x {gpu.model}, {gpu.vcpus} vCPU, {gpu.memory_gib} GiB but {self.instance_types[0]!r} has "
                    f"{first.count} x {first.model}, {first.vcpus} vCPU, {first.memory_gib} GiB; one group has one node shape "
                    "(the autoscaler sizes a group by its first type): split it into two groups",
                )
            archs.add(gpu.arch)  # one GPU model is offered on one architecture only, so a group of one shape has one
        if self.ami_type is not None:
            ami_arch = facts.eks_gpu_ami_types()[self.ami_type]["arch"]
            if ami_arch not in archs:
                raise FieldError("ami_type", f"{self.ami_type} is for {ami_arch}, the instance types are {archs.pop()}")
        return self

    @property
    def gpu(self) -> facts.AwsGpu:
        """The GPU every node of the group carries (the validator makes the instance types agree)."""
        gpu = facts.aws_gpu(self.instance_types[0])
        assert gpu is not None
        return gpu

    @property
    def resolved_ami_type(self) -> str:
        """The AMI type to use: the declared one, else AL2023 NVIDIA for the instances' architecture."""
        if self.ami_type:
            return self.ami_type
        return "AL2023_ARM_64_NVIDIA" if self.gpu.arch == "arm64" else "AL2023_x86_64_NVIDIA"

    @property
    def needs_device_plugin(self) -> bool:
        return not facts.eks_gpu_ami_types()[self.resolved_ami_type]["device_plugin_included"]


EksLogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]


class EksCluster(Model):
    kubernetes_version: str
    support_type: Literal["STANDARD", "EXTENDED"] = "STANDARD"
    endpoint_public: bool = False
    public_access_cidrs: list[Cidr] = []
    logging: list[EksLogType] = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    log_retention_days: LogRetentionDays = 365
    system_node_group: EksNodeGroup
    gpu_node_groups: list[EksGpuNodeGroup] = []

    @model_validator(mode="after")
    def _checks(self) -> EksCluster:
        versions = facts.eks_kubernetes_versions()
        known = versions.get(self.kubernetes_version)
        if known is None:
            raise FieldError(
                "kubernetes_version", f"{self.kubernetes_version!r} is not a supported EKS version; use one of {sorted(versions)}"
            )
        until = known.support_until(self.support_type)
        days = (until - date.today()).days
        if days <= facts.eks_support_margin_days():
            newest = max(versions.values(), key=lambda v: v.support_until(self.support_type))
            raise FieldError(
                "kubernetes_version",
                f"{self.kubernetes_version} leaves {self.support_type.lower()} support on {until} ({days} days from today): EKS then "
                f"upgrades the cluster behind Terraform's back and the next plan asks for a downgrade; use {newest.version} "
                f"({self.support_type.lower()} support until {newest.support_until(self.support_type)})",
            )
        if self.public_access_cidrs and not self.endpoint_public:
            raise FieldError("public_access_cidrs", "set, but endpoint_public is false; remove it or make the endpoint public")
        if self.endpoint_public and not self.public_access_cidrs:
            raise FieldError("public_access_cidrs", "a public endpoint needs the CIDRs allowed to reach it (0.0.0.0/0 is not assumed)")
        unique_names(self.gpu_node_groups, "gpu_node_groups")
        return self


class LambdaEndpoint(ImageRef):
    name: Name
    repository: Name
    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 1024
    timeout_s: Annotated[int, Field(ge=1, le=900)] = 30
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    reserved_concurrency: Annotated[int, Field(ge=0)]
    url_auth: Literal["AWS_IAM", "NONE"] = "AWS_IAM"
    log_retention_days: LogRetentionDays = 365


class AwsConfig(Model):
    account_id: Annotated[str, Field(pattern=r"^\d{12}$")]
    region: str
    network: AwsNetwork
    registries: list[EcrRepository] = []
    cluster: EksCluster | None = None
    endpoints: list[LambdaEndpoint] = []

    @model_validator(mode="after")
    def _checks(self) -> AwsConfig:
        if self.region not in facts.aws_regions():
            raise FieldError("region", f"unknown AWS region {self.region!r}; e.g. us-east-1, eu-west-1")
        for i, zone in enumerate(self.network.zones):
            if zone[:-1] != self.region:
                raise FieldError(("network", "zones", i), f"{zone!r} is not a zone of {self.region}; e.g. {self.region}a")
        unique_names(self.registries, "registries")
        unique_names(self.endpoints, "endpoints")
        repos = {r.name for r in self.registries}
        for i, ep in enumerate(self.endpoints):
            if ep.repository not in repos:
                raise FieldError(
                    ("endpoints", i, "repository"),
                    f"{ep.repository!r} is not a registry of this environment; one of {sorted(repos) or 'none defined'}",
                )
        return self
