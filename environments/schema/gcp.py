"""The ``gcp`` section: network, Artifact Registry repositories, the GKE cluster and its node pools, Cloud Build triggers."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, model_validator

from environments import facts
from environments.schema.types import Cidr, FieldError, LabelKey, LabelValue, Model, Name, Taint, check_scaling, unique_names


class GcpNetwork(Model):
    subnet_cidr: Cidr
    pods_cidr: Cidr
    services_cidr: Cidr
    nat: bool = True
    nat_log: Literal["ERRORS_ONLY", "TRANSLATIONS_ONLY", "ALL"] = "ERRORS_ONLY"


class ArtifactRegistry(Model):
    name: Name
    kms: bool = True  # a customer-managed key (CKV_GCP_84); fixed at creation
    keep_recent: Annotated[int, Field(ge=1, le=10000)] = 30
    delete_untagged_after_days: Annotated[int, Field(ge=1, le=3650)] = 7
    delete_after_days: Annotated[int, Field(ge=1, le=3650)] = 90


class GkeNodePool(Model):
    machine_type: str
    min: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=1)]
    disk_gb: Annotated[int, Field(ge=10, le=65536)] = 100
    spot: bool = False
    labels: dict[LabelKey, LabelValue] = {}
    taints: list[Taint] = []

    @model_validator(mode="after")
    def _scaling(self) -> GkeNodePool:
        check_scaling(self.min, None, self.max)
        return self


class Accelerator(Model):
    type: str
    count: Annotated[int, Field(ge=1, le=16)]
    driver: Literal["DEFAULT", "LATEST", "INSTALLATION_DISABLED"] = "LATEST"


class GkeGpuNodePool(GkeNodePool):
    name: Name
    accelerator: Accelerator
    zones: list[str] = []

    @model_validator(mode="after")
    def _fits(self) -> GkeGpuNodePool:
        accel = self.accelerator
        if accel.type not in facts.gcp_known_accelerators():
            raise FieldError(("accelerator", "type"), f"unknown accelerator {accel.type!r}; one of {facts.gcp_known_accelerators()}")
        builtin = facts.gcp_machine_gpu(self.machine_type)
        if builtin is not None:
            want_type, want_count = builtin
            if accel.type != want_type:
                raise FieldError(
                    ("accelerator", "type"),
                    f"{self.machine_type} carries {want_type}, not {accel.type}; nvidia-l4 fits g2, A100 fits a2, H100 fits a3",
                )
            if accel.count != want_count:
                raise FieldError(("accelerator", "count"), f"{self.machine_type} has {want_count} built-in GPU(s), not {accel.count}")
        elif self.machine_type.startswith("n1-"):
            if accel.type not in facts.gcp_n1_attachable():
                raise FieldError(("accelerator", "type"), f"{accel.type} cannot attach to N1; one of {facts.gcp_n1_attachable()}")
            if accel.count not in (1, 2, 4):
                raise FieldError(("accelerator", "count"), "N1 machines attach 1, 2 or 4 GPUs")
        else:
            raise FieldError(
                "machine_type",
                f"{self.machine_type!r} has no GPU and takes none; use g2-standard-*, a2-*, a3-* or n1-standard-* with a T4/V100",
            )
        return self


class GkeCluster(Model):
    release_channel: Literal["RAPID", "REGULAR", "STABLE", "EXTENDED"] = "REGULAR"
    private_nodes: bool = True
    private_endpoint: bool = False
    master_cidr: Cidr = "172.16.0.0/28"
    workload_identity: bool = True
    network_policy: bool = True
    binary_authorization: bool = True  # enforce the project's Binary Authorization policy (CKV_GCP_66)
    intranode_visibility: bool = True  # pod-to-pod traffic on one node reaches VPC flow logs (CKV_GCP_61)
    # Google Groups for RBAC (CKV_GCP_65): GKE requires the group to be named gke-security-groups@<domain>
    rbac_security_group: Annotated[str, Field(pattern=r"^gke-security-groups@[a-z0-9.-]+\.[a-z]{2,}$")] | None = None
    master_authorized_networks: list[AuthorizedNetwork] = []
    deletion_protection: bool = True
    system_node_pool: GkeNodePool
    gpu_node_pools: list[GkeGpuNodePool] = []

    @model_validator(mode="after")
    def _checks(self) -> GkeCluster:
        if ipaddress.IPv4Network(self.master_cidr).prefixlen != 28:
            raise FieldError("master_cidr", f"{self.master_cidr} must be a /28 (GKE's control-plane range)")
        if self.private_endpoint and not self.private_nodes:
            raise FieldError("private_endpoint", "a private endpoint needs private_nodes: true")
        unique_names(self.gpu_node_pools, "gpu_node_pools")
        return self


class AuthorizedNetwork(Model):
    cidr: Cidr
    name: str


class BuildTrigger(Model):
    name: Name
    registry: Name
    github_owner: str
    github_repo: str
    filename: str = "cloudbuild.yaml"
    included_files: list[str] = []


class GcpConfig(Model):
    project_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    billing_account: Annotated[str, Field(pattern=r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$")]  # holds the budget
    region: str
    network: GcpNetwork
    registries: list[ArtifactRegistry] = []
    cluster: GkeCluster | None = None
    # the Cloud Build 2nd-generation GitHub connection of the project's region that the triggers use,
    # by its id (projects/<project>/locations/<region>/connections/<id>); it is connected once by
    # hand (the GitHub App installation cannot be automated: docs/bootstrap.md), `infra preflight` checks it
    build_connection: Name | None = None
    build_triggers: list[BuildTrigger] = []

    @model_validator(mode="after")
    def _checks(self) -> GcpConfig:
        if self.region not in facts.gcp_regions():
            raise FieldError("region", f"unknown GCP region {self.region!r}; e.g. us-central1, europe-west4")
        if self.cluster:
            for i, pool in enumerate(self.cluster.gpu_node_pools):
                for j, zone in enumerate(pool.zones):
                    if not zone.startswith(self.region + "-"):
                        raise FieldError(("cluster", "gpu_node_pools", i, "zones", j), f"{zone!r} is not a zone of {self.region}")
        unique_names(self.registries, "registries")
        unique_names(self.build_triggers, "build_triggers")
        if self.build_triggers and self.build_connection is None:
            raise FieldError(
                "build_connection",
                "build triggers need the Cloud Build GitHub connection of the region (2nd generation), by its id, e.g. github",
            )
        repos = {r.name for r in self.registries}
        for i, trigger in enumerate(self.build_triggers):
            if trigger.registry not in repos:
                raise FieldError(
                    ("build_triggers", i, "registry"),
                    f"{trigger.registry!r} is not a registry of this environment; one of {sorted(repos) or 'none defined'}",
                )
        return self


GkeCluster.model_rebuild()
