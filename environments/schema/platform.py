"""The sections beside the clouds: serving, state, budget, usage, policy exceptions, the model
registry, monitoring and CI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from environments.schema.types import Cloud, Email, FieldError, ImageRef, LogRetentionDays, Model, Name, check_scaling


class Replicas(Model):
    min: Annotated[int, Field(ge=1)]
    max: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _order(self) -> Replicas:
        check_scaling(self.min, None, self.max)
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
    billing budget) for its share: ``by_cloud`` splits ``monthly_usd`` when there are two clouds.
    ``ceiling_usd`` caps the ceiling, the month with every node group and pool at its maximum, which
    ``infra cost`` and ``infra cost diff`` check as they check the estimate against ``monthly_usd``."""

    monthly_usd: Annotated[float, Field(gt=0)]
    by_cloud: dict[Cloud, Annotated[float, Field(gt=0)]] = {}
    thresholds_pct: Annotated[list[Annotated[int, Field(ge=1, le=1000)]], Field(min_length=1)] = [50, 80, 100]
    recipients: Annotated[list[Email], Field(min_length=1)]
    # `infra cost diff` fails when a change raises this environment's estimate by more than this
    max_increase_pct: Annotated[float, Field(gt=0)] | None = None
    # a cap on the ceiling: the monthly cost with every node group and pool at its maximum all month;
    # `infra cost` and `infra cost diff` fail above it (at least monthly_usd: the ceiling is never below the estimate)
    ceiling_usd: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _sorted(self) -> Budget:
        if self.thresholds_pct != sorted(set(self.thresholds_pct)):
            raise FieldError("thresholds_pct", f"{self.thresholds_pct} must be increasing without repeats, e.g. [50, 80, 100]")
        if self.by_cloud and abs(sum(self.by_cloud.values()) - self.monthly_usd) > 0.005:
            raise FieldError(
                "by_cloud", f"the shares add up to {sum(self.by_cloud.values()):g}, not monthly_usd ({self.monthly_usd:g}); make them equal"
            )
        if self.ceiling_usd is not None and self.ceiling_usd < self.monthly_usd:
            raise FieldError(
                "ceiling_usd",
                f"{self.ceiling_usd:g} is below monthly_usd ({self.monthly_usd:g}); the ceiling (every pool at its maximum) is never below the estimate, so cap it at monthly_usd or more",
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
    # requests to the customer-managed keys (encrypt, decrypt, generate data key), per cloud, shared
    # evenly by that cloud's keys (AWS KMS, Cloud KMS)
    kms_requests_per_month: Annotated[int, Field(ge=0)] | None = None


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
    # the content of that version: sha256 of its canonical file list (name, version, each file's
    # sha256 and size; `infra model show` prints it), the same in every registry the version is
    # copied to. The deploy's promotion copies the version only when the source's manifest has it
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    # `infra model register` refuses a version whose held-out accuracy is below this floor
    min_accuracy: Annotated[float, Field(gt=0, le=1)]
    # S3: old object versions kept this many days after they are replaced
    keep_noncurrent_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # GCS: deleted or replaced objects stay recoverable this many days (soft delete: 0, or 7 to 90;
    # a retention *policy* would rule out object versioning on the same bucket)
    gcs_retention_days: Annotated[int, Field(ge=0, le=90)] = 7
    # AWS: a replica of the bucket in this region (versioned, encrypted with a key of that region)
    replica_region: str | None = None

    @model_validator(mode="after")
    def _digest_pins_a_version(self) -> ModelRegistry:
        if self.digest is not None and self.version is None:
            raise FieldError("digest", "a digest pins the content of models.version: set the version too (infra model pin writes both)")
        return self


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
