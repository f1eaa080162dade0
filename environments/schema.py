"""The schema of an environment file: frozen pydantic models, unknown keys forbidden.

Every cross-field check raises :class:`FieldError`, which names the field it is about, so the
loader can print ``file:line: path.to.field: what is wrong; what would be right``.
Derived values (resource names, state key, branch of the build triggers) are properties, never
fields: an environment file holds only what differs between environments.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Annotated, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from environments import facts


class FieldError(ValueError):
    """A validation error about one named field of the model being validated."""

    def __init__(self, field: str | tuple[str | int, ...], message: str) -> None:
        self.field: tuple[str | int, ...] = (field,) if isinstance(field, str) else field
        self.message = message
        super().__init__(message)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- scalar types -----------------------------------------------------------------------------


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 network in CIDR form ({exc}); e.g. '10.10.0.0/16'") from None
    return str(net)


Cidr = Annotated[str, AfterValidator(_cidr)]
Cloud = Literal["aws", "gcp"]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
EnvName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,11}$")]
LabelKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
LabelValue = Annotated[str, Field(pattern=r"^[a-z0-9_-]{0,63}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")]
K8sLabels = dict[
    Annotated[str, Field(pattern=r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")],
    Annotated[str, Field(max_length=63)],
]


# CloudWatch Logs accepts only these retention periods; 365+ days satisfies CKV_AWS_338
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]
ZoneName = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")]


def _check_scaling(lo: int, desired: int | None, hi: int) -> None:
    if lo > hi:
        raise FieldError("min", f"min ({lo}) is greater than max ({hi}); min <= desired <= max")
    if desired is not None and not lo <= desired <= hi:
        raise FieldError("desired", f"desired ({desired}) is outside min..max ({lo}..{hi}); min <= desired <= max")


class Taint(Model):
    """A Kubernetes taint, in Kubernetes casing; constructs translate it per cloud."""

    key: Annotated[str, Field(min_length=1, max_length=63)]
    value: Annotated[str, Field(max_length=63)] = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


# --- AWS --------------------------------------------------------------------------------------


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
        _check_scaling(self.min, self.desired, self.max)
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
            if (gpu.model, gpu.count) != (first.model, first.count):
                # the autoscaler's node template announces one GPU model and count per group
                raise FieldError(
                    ("instance_types", i),
                    f"{itype!r} has {gpu.count} x {gpu.model} but {self.instance_types[0]!r} has {first.count} x {first.model}; "
                    "one group has one GPU shape: split it into two groups",
                )
            archs.add(gpu.arch)
        if len(archs) > 1:
            raise FieldError("instance_types", "mixes x86_64 and arm64 GPU instance types; one node group has one AMI")
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
        supported = facts.eks_kubernetes_versions()
        if self.kubernetes_version not in supported:
            raise FieldError("kubernetes_version", f"{self.kubernetes_version!r} is not a supported EKS version; use one of {supported}")
        if self.public_access_cidrs and not self.endpoint_public:
            raise FieldError("public_access_cidrs", "set, but endpoint_public is false; remove it or make the endpoint public")
        if self.endpoint_public and not self.public_access_cidrs:
            raise FieldError("public_access_cidrs", "a public endpoint needs the CIDRs allowed to reach it (0.0.0.0/0 is not assumed)")
        _unique_names(self.gpu_node_groups, "gpu_node_groups")
        return self


class ImageRef(Model):
    """Which image of a registry to run: a tag or a digest, exactly one."""

    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None = None
    image_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None

    @model_validator(mode="after")
    def _image(self) -> ImageRef:
        if (self.image_tag is None) == (self.image_digest is None):
            raise FieldError("image_tag", "give exactly one of image_tag or image_digest")
        return self

    @property
    def image_ref(self) -> str:
        """The part after the repository URL: ``:tag`` or ``@sha256:…``."""
        return f"@{self.image_digest}" if self.image_digest else f":{self.image_tag}"


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
        _unique_names(self.registries, "registries")
        _unique_names(self.endpoints, "endpoints")
        repos = {r.name for r in self.registries}
        for i, ep in enumerate(self.endpoints):
            if ep.repository not in repos:
                raise FieldError(
                    ("endpoints", i, "repository"),
                    f"{ep.repository!r} is not a registry of this environment; one of {sorted(repos) or 'none defined'}",
                )
        return self


# --- GCP --------------------------------------------------------------------------------------


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
        _check_scaling(self.min, None, self.max)
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
        _unique_names(self.gpu_node_pools, "gpu_node_pools")
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
        _unique_names(self.registries, "registries")
        _unique_names(self.build_triggers, "build_triggers")
        repos = {r.name for r in self.registries}
        for i, trigger in enumerate(self.build_triggers):
            if trigger.registry not in repos:
                raise FieldError(
                    ("build_triggers", i, "registry"),
                    f"{trigger.registry!r} is not a registry of this environment; one of {sorted(repos) or 'none defined'}",
                )
        return self


# --- environment ------------------------------------------------------------------------------


class Replicas(Model):
    min: Annotated[int, Field(ge=1)]
    max: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _order(self) -> Replicas:
        _check_scaling(self.min, None, self.max)
        return self


CpuQuantity = Annotated[str, Field(pattern=r"^([1-9][0-9]{0,4}m|[1-9][0-9]?(\.[0-9]{1,3})?)$")]
MemoryQuantity = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}(Mi|Gi)$")]


class Serving(ImageRef):
    """The model server on the environment's Kubernetes clusters (``app/k8s.py`` renders it).

    It runs on every cluster the environment has, from that cloud's copy of ``registry``; with
    ``gpu_pool`` set it requests one GPU and runs on that GPU pool (tolerating its taints).
    """

    registry: Name
    replicas: Replicas
    cpu: CpuQuantity = "500m"
    memory: MemoryQuantity = "512Mi"
    target_cpu_utilization: Annotated[int, Field(ge=10, le=95)] = 70
    gpu_pool: Name | None = None


class StateBackend(Model):
    backend: Literal["s3", "gcs"]
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    region: str | None = None
    use_lockfile: bool = True


class Budget(Model):
    """The environment's monthly budget. Each cloud gets a real budget resource (AWS Budgets, a GCP
    billing budget) for its share: ``by_cloud`` splits ``monthly_usd`` when there are two clouds."""

    monthly_usd: Annotated[float, Field(gt=0)]
    by_cloud: dict[Cloud, Annotated[float, Field(gt=0)]] = {}
    thresholds_pct: Annotated[list[Annotated[int, Field(ge=1, le=1000)]], Field(min_length=1)] = [50, 80, 100]
    recipients: Annotated[list[Email], Field(min_length=1)]
    # `infra cost diff` fails when a change raises this environment's estimate by more than this
    max_increase_pct: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _sorted(self) -> Budget:
        if self.thresholds_pct != sorted(set(self.thresholds_pct)):
            raise FieldError("thresholds_pct", f"{self.thresholds_pct} must be increasing without repeats, e.g. [50, 80, 100]")
        if self.by_cloud and abs(sum(self.by_cloud.values()) - self.monthly_usd) > 0.005:
            raise FieldError(
                "by_cloud", f"the shares add up to {sum(self.by_cloud.values()):g}, not monthly_usd ({self.monthly_usd:g}); make them equal"
            )
        return self


class Usage(Model):
    """Expected monthly usage, read by the cost reports. A figure left out is not zero: the report
    prices what it can and shows the unit price ("$0.20 per 1M requests") where usage is missing.
    Figures marked *per cloud* apply to each cloud of the environment."""

    # requests to the Lambda endpoints, shared evenly by them
    requests_per_month: Annotated[int, Field(ge=0)] | None = None
    lambda_avg_duration_ms: Annotated[int, Field(ge=1, le=900000)] = 100
    # node-hours per GPU pool (`aws/<name>`, `gcp/<name>`), including the pool's floor (min nodes × 730)
    gpu_node_hours: dict[str, Annotated[float, Field(ge=0)]] = {}
    # GB processed by the NAT gateways, per cloud
    nat_gb: Annotated[float, Field(ge=0)] | None = None
    # GB sent to the internet, per cloud
    egress_gb: Annotated[float, Field(ge=0)] | None = None
    # GB of logs ingested, per cloud (CloudWatch Logs, Cloud Logging)
    logs_gb: Annotated[float, Field(ge=0)] | None = None
    # GB of images kept in each registry
    registry_gb: Annotated[float, Field(ge=0)] | None = None
    # Cloud Build minutes, shared evenly by the build triggers
    build_minutes: Annotated[float, Field(ge=0)] | None = None


def _reason(value: str) -> str:
    value = " ".join(value.split())
    if len(value) < 15:
        raise ValueError("say why this environment does not meet the check (at least 15 characters); a skip without a reason fails")
    return value


CheckId = Annotated[str, Field(pattern=r"^(CKV2?_[A-Z0-9]+_\d+|MLP\d{3})$")]


class PolicySkip(Model):
    """A check this environment does not meet on purpose (checkov's CKV_* or our MLP*)."""

    check: CheckId
    # construct paths inside the stack, shell globs (``aws-eks/*``); empty: every resource
    resources: list[Annotated[str, Field(min_length=1)]] = []
    reason: Annotated[str, AfterValidator(_reason)]


class Policy(Model):
    """Declared exceptions to the policy gate; every report lists them with their reasons.
    Only an environment nothing promotes into (dev) may declare any."""

    skips: list[PolicySkip] = []


REQUIRED_TAGS = ("team", "cost-center")
DERIVED_TAGS = ("environment", "project", "managed-by")


class ModelRegistry(Model):
    """The environment's model registry (docs/models.md): one bucket per cloud of the environment,
    ``models/<name>/<version>/`` (the artifact files and ``manifest.json``) and
    ``models/<name>/aliases/<alias>.json``. Only the environment's training role writes; its serving
    roles (Lambda, the cluster's pods) read."""

    name: Name = "wine-cultivar"
    # the alias this environment's services load at start: `latest` (the last version registered,
    # where training runs) or the stage a promotion moves (`staging`, `production`)
    alias: Literal["latest", "staging", "production"]
    # the version this environment serves, pinned by a pull request (the continuous-training
    # workflow opens it); the deploy promotes it from the environment that promotes into this one
    version: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")] | None = None
    # `infra model register` refuses a version whose held-out accuracy is below this floor
    min_accuracy: Annotated[float, Field(gt=0, le=1)]
    # S3: old object versions kept this many days after they are replaced
    keep_noncurrent_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # GCS: deleted or replaced objects stay recoverable this many days (soft delete: 0, or 7 to 90;
    # a retention *policy* would rule out object versioning on the same bucket)
    gcs_retention_days: Annotated[int, Field(ge=0, le=90)] = 7
    # AWS: a replica of the bucket in this region (versioned, encrypted with a key of that region)
    replica_region: str | None = None


class Monitoring(Model):
    """Alerts and dashboards of the environment (docs/monitoring.md); thresholds are per environment."""

    recipients: Annotated[list[Email], Field(min_length=1)]
    # Lambda endpoints: p99 duration objective, error rate and throttles that alarm
    latency_p99_ms: Annotated[int, Field(ge=1, le=900000)]
    error_rate_pct: Annotated[float, Field(gt=0, le=100)]
    throttles_per_5min: Annotated[int, Field(ge=0)]
    # GPU pools: alarm when a pool has run at its max size this long (capacity exhausted)
    gpu_at_max_minutes: Annotated[int, Field(ge=5, le=1440)]
    # clusters: alarm when a node has been not ready this long
    nodes_not_ready_minutes: Annotated[int, Field(ge=1, le=1440)]
    # retention of the clusters' and services' logs (CloudWatch's allowed values; GCP's _Default log bucket too)
    log_retention_days: LogRetentionDays = 365


WorkloadIdentityProvider = Annotated[
    str, Field(pattern=r"^projects/\d+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$")
]


class Ci(Model):
    """How GitHub Actions reaches this environment (docs/cicd.md). The roles themselves are derived:
    ``<project>-<env>-github-deploy`` (the deploy job, trusted only from the GitHub Environment named
    like this environment) and ``<project>-<env>-github-plan`` (read-only: pull-request reviews and
    nightly drift); ``infra bootstrap`` creates them."""

    # owner/name of the repository whose workflows may assume the roles
    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$")]
    # the branch that nightly drift checks run from (the repository's default branch)
    default_branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")] = "main"
    # a pull request's review runs a real read-only plan with the plan role
    plan_in_review: bool = True
    # Workload Identity Federation provider for the GCP deploy (full resource name; needs the
    # project *number*); without it a GCP environment cannot be deployed from Actions
    gcp_workload_identity_provider: WorkloadIdentityProvider | None = None


class Environment(Model):
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

    def cluster_clouds(self) -> list[Cloud]:
        """The clouds on which this environment has a Kubernetes cluster."""
        out: list[Cloud] = []
        if self.aws and self.aws.cluster:
            out.append("aws")
        if self.gcp and self.gcp.cluster:
            out.append("gcp")
        return out

    def _check_cidr_overlaps(self) -> None:
        for (a_path, a), (b_path, b) in _pairs(self.cidrs()):
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

    # derived identity -------------------------------------------------------------------------
    def resource_name(self, component: str) -> str:
        """``<project>-<env>-<component>``: the one naming rule for every resource."""
        return f"{self.project}-{self.name}-{component}"

    def eks_node_group_name(self, group: str) -> str:
        """An EKS managed node group's name (EKS labels its nodes with it)."""
        return self.resource_name(f"ng-{group}")

    def gke_gpu_pool_name(self, pool: str) -> str:
        """A GKE GPU node pool's name (GKE labels its nodes with it)."""
        return self.resource_name(f"gpu-{pool}")

    def gpu_pool_name(self, cloud: Cloud, pool: str) -> str:
        return self.eks_node_group_name(pool) if cloud == "aws" else self.gke_gpu_pool_name(pool)

    def image_repository(self, cloud: Cloud, registry: str) -> str:
        """Where this environment's images of ``registry`` live: the ECR repository URL, or the
        Artifact Registry repository path plus the image name (the registry's name)."""
        if cloud == "aws":
            assert self.aws is not None
            return f"{self.aws.account_id}.dkr.ecr.{self.aws.region}.amazonaws.com/{self.resource_name(registry)}"
        assert self.gcp is not None
        return f"{self.artifact_registry_url(registry)}/{registry}"

    def artifact_registry_url(self, registry: str) -> str:
        """``<region>-docker.pkg.dev/<project>/<repository>``: the Artifact Registry repository's path."""
        assert self.gcp is not None
        return f"{self.gcp.region}-docker.pkg.dev/{self.gcp.project_id}/{self.resource_name(registry)}"

    def github_role_name(self, purpose: Literal["deploy", "plan"]) -> str:
        """The IAM role (AWS) a workflow assumes through OIDC: ``deploy`` or read-only ``plan``."""
        return self.resource_name(f"github-{purpose}")

    def github_role_arn(self, purpose: Literal["deploy", "plan"]) -> str | None:
        if self.aws is None:
            return None
        return f"arn:aws:iam::{self.aws.account_id}:role/{self.github_role_name(purpose)}"

    def gcp_service_account(self, purpose: Literal["deploy", "plan"]) -> str | None:
        """The service account a workflow impersonates through Workload Identity Federation."""
        if self.gcp is None:
            return None
        return f"{self.resource_name(purpose)}@{self.gcp.project_id}.iam.gserviceaccount.com"

    def model_bucket(self, cloud: Cloud, *, replica: bool = False) -> str:
        """The model registry's bucket on ``cloud`` (globally unique: the account or project in it)."""
        if cloud == "aws":
            assert self.aws is not None
            return self.resource_name(f"models-{self.aws.account_id}" + ("-replica" if replica else ""))
        assert self.gcp is not None
        return self.resource_name(f"models-{self.gcp.project_id}")

    @property
    def state_key(self) -> str:
        return f"{self.project}/{self.name}/terraform.tfstate"

    @property
    def state_region(self) -> str | None:
        if self.state.backend != "s3":
            return None
        return self.state.region or (self.aws.region if self.aws else None)

    @property
    def all_tags(self) -> dict[str, str]:
        """Declared tags plus the derived ones every resource carries."""
        return {**self.tags, "environment": self.name, "project": self.project, "managed-by": "cdktf"}


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def _unique_names(items: Sequence[_Named], field: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item.name
        if name in seen:
            raise FieldError((field, i, "name"), f"{name!r} is already used by {field}[{seen[name]}]; names are unique")
        seen[name] = i


def _pairs(
    items: list[tuple[tuple[str | int, ...], str]],
) -> list[tuple[tuple[tuple[str | int, ...], str], tuple[tuple[str | int, ...], str]]]:
    return [(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))]


GkeCluster.model_rebuild()
