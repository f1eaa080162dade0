"""Our own policy rules: what checkov cannot know (our tags, our GPU cost rules, our environment
differences). Each rule reads the synthesized JSON of one environment's stacks and says, per
resource it looks at, whether it passes.

A rule has an id (``MLP0nn``), a severity and a one-line fix; ``RULES`` is the registry. An
environment is *promoted* when another environment promotes into it (staging, production) and is
*production* when its deploys wait for an approval (the schema requires that of production).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from environments.schema import Environment
from environments.tagging import KNOWN_TAGGABLE, POLICY_TAGS, tag_attribute_name
from infra.synthesized.gpu_pools import GpuPool, gpu_pools
from infra.synthesized.reader import Resource, Stack
from infra.synthesized.secrets import find_secrets

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]


@dataclass(frozen=True)
class Context:
    """One environment and its synthesized stacks."""

    env: Environment
    stacks: list[Stack]
    promoted: bool
    production: bool


@dataclass(frozen=True)
class Outcome:
    """One rule on one resource (or on the environment, ``resource=None``)."""

    stack: str
    resource: Resource | None
    passed: bool
    message: str


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    fix: str
    check: Callable[[Context], Iterator[Outcome]] = field(repr=False)


RULES: dict[str, Rule] = {}


def rule(id_: str, title: str, severity: Severity, fix: str) -> Callable[[Callable[[Context], Iterator[Outcome]]], Rule]:
    def register(fn: Callable[[Context], Iterator[Outcome]]) -> Rule:
        if id_ in RULES:
            raise ValueError(f"rule {id_} registered twice")
        RULES[id_] = Rule(id_, title, severity, fix, fn)
        return RULES[id_]

    return register


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


# --- MLP001 tags ------------------------------------------------------------------------------


def _provider_defaults(stack: Stack, rtype: str, provider_ref: str | None) -> dict[str, Any]:
    """Tags/labels a resource inherits from its provider block (AWS ``default_tags``, Google ``default_labels``)."""
    name = "aws" if rtype.startswith("aws_") else "google" if rtype.startswith("google_") else None
    if name is None:
        return {}
    alias = provider_ref.split(".", 1)[1] if provider_ref and "." in provider_ref else None
    for block in stack.raw.get("provider", {}).get(name, []):
        if block.get("alias") != alias:
            continue
        if name == "aws":
            default_tags = block.get("default_tags") or [{}]
            return dict((default_tags[0] if isinstance(default_tags, list) else default_tags).get("tags") or {})
        return dict(block.get("default_labels") or {})
    return {}


@rule(
    "MLP001",
    "every resource that takes tags or labels carries environment, team, cost-center and managed-by",
    "HIGH",
    "declare team and cost-center in the environment file's tags and create the resource inside an EnvironmentStack (its aspect tags it)",
)
def required_tags(ctx: Context) -> Iterator[Outcome]:
    for stack in ctx.stacks:
        for r in stack.resources:
            attribute = tag_attribute_name(r.type)
            if attribute is None or (attribute not in r.values and r.type not in KNOWN_TAGGABLE):
                continue
            own = r.values.get(attribute) or {}
            if _is_reference(own):
                continue  # computed elsewhere; cannot be judged from the configuration
            tags = {**_provider_defaults(stack, r.type, r.values.get("provider")), **own}
            missing = [k for k in POLICY_TAGS if not tags.get(k)]
            what = "tags" if attribute == "tags" else "labels"
            yield Outcome(stack.name, r, not missing, f"{what} lack {', '.join(missing)}" if missing else f"{what} complete")


# --- GPU capacity -----------------------------------------------------------------------------


@rule(
    "MLP002",
    "GPU node groups and pools outside production scale to zero",
    "MEDIUM",
    "set min: 0 on the GPU node group/pool in the environment file (the autoscaler adds nodes when a pod asks for a GPU)",
)
def gpu_scale_to_zero(ctx: Context) -> Iterator[Outcome]:
    if ctx.production:
        return
    for stack in ctx.stacks:
        for g in gpu_pools(stack):
            ok = g.min_nodes == 0
            yield Outcome(stack.name, g.resource, ok, f"min {g.min_nodes}" + ("" if ok else ": idle GPUs are billed around the clock"))


@rule(
    "MLP003",
    "production GPU capacity is not spot-only",
    "HIGH",
    "add an on-demand GPU node group/pool (capacity: on_demand / spot: false) next to the spot one",
)
def production_gpu_not_spot_only(ctx: Context) -> Iterator[Outcome]:
    if not ctx.production:
        return
    for stack in ctx.stacks:
        by_cloud: dict[str, list[GpuPool]] = {}
        for g in gpu_pools(stack):
            by_cloud.setdefault(g.cloud, []).append(g)
        for cloud, groups in by_cloud.items():
            on_demand = [g for g in groups if not g.spot and (g.max_nodes or 0) > 0]
            for g in groups:
                msg = f"{len(on_demand)} on-demand of {len(groups)} {cloud} GPU groups"
                yield Outcome(
                    stack.name, g.resource, bool(on_demand), msg if on_demand else msg + ": a spot reclaim takes all GPU serving down"
                )


# --- cluster endpoints ------------------------------------------------------------------------

OPEN = {"0.0.0.0/0", "::/0"}


@rule(
    "MLP004",
    "cluster API endpoints are private, or public only to the CIDRs the environment file declares",
    "HIGH",
    "make the endpoint private (endpoint_public: false / private_endpoint: true) or list the allowed CIDRs in the environment file",
)
def private_cluster_endpoints(ctx: Context) -> Iterator[Outcome]:
    for stack in ctx.stacks:
        for r in stack.of_type("aws_eks_cluster"):
            if r.get("vpc_config.endpoint_public_access", True) is False:
                yield Outcome(stack.name, r, True, "private endpoint")
                continue
            cidrs = set(r.get("vpc_config.public_access_cidrs") or ["0.0.0.0/0"])
            declared = set(ctx.env.aws.cluster.public_access_cidrs) if ctx.env.aws and ctx.env.aws.cluster else set()
            yield _endpoint_outcome(stack, r, cidrs, declared)
        for r in stack.of_type("google_container_cluster"):
            if r.get("private_cluster_config.enable_private_endpoint") is True:
                yield Outcome(stack.name, r, True, "private endpoint")
                continue
            config = r.get("master_authorized_networks_config")
            if not config:
                yield Outcome(stack.name, r, False, "public endpoint without master authorized networks: open to the internet")
                continue
            blocks = r.get("master_authorized_networks_config.cidr_blocks") or []
            cidrs = {b.get("cidr_block") for b in blocks if isinstance(b, dict)}
            cluster = ctx.env.gcp.cluster if ctx.env.gcp else None
            declared = {n.cidr for n in cluster.master_authorized_networks} if cluster else set()
            yield _endpoint_outcome(stack, r, cidrs, declared)


def _endpoint_outcome(stack: Stack, r: Resource, cidrs: set[Any], declared: set[str]) -> Outcome:
    if cidrs & OPEN:
        return Outcome(stack.name, r, False, "public endpoint open to 0.0.0.0/0")
    undeclared = sorted(str(c) for c in cidrs - declared)
    if undeclared:
        return Outcome(stack.name, r, False, f"public endpoint admits {', '.join(undeclared)}, not declared in the environment file")
    return Outcome(stack.name, r, True, f"public endpoint restricted to {', '.join(sorted(cidrs)) or 'nobody'}")


# --- registries -------------------------------------------------------------------------------


@rule("MLP005", "container registries have immutable tags", "HIGH", "set immutable_tags: true on the registry (tags are never overwritten)")
def registry_immutable(ctx: Context) -> Iterator[Outcome]:
    for stack in ctx.stacks:
        for r in stack.of_type("aws_ecr_repository"):
            mutability = str(r.get("image_tag_mutability") or "MUTABLE")
            yield Outcome(stack.name, r, mutability.startswith("IMMUTABLE"), f"image_tag_mutability {mutability}")
        for r in stack.of_type("google_artifact_registry_repository"):
            if r.get("format", "DOCKER") == "DOCKER":
                immutable = r.get("docker_config.immutable_tags") is True
                yield Outcome(stack.name, r, immutable, "immutable tags" if immutable else "tags can be overwritten")


@rule(
    "MLP006",
    "container registries scan images on push",
    "HIGH",
    "set scan_on_push: true (ECR) / keep vulnerability scanning inherited with the Container Scanning API enabled (Artifact Registry)",
)
def registry_scan_on_push(ctx: Context) -> Iterator[Outcome]:
    for stack in ctx.stacks:
        registry_scanning = any(
            rule_.get("scan_frequency") in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN")
            for cfg in stack.of_type("aws_ecr_registry_scanning_configuration")
            for rule_ in (cfg.values.get("rule") or [])
            if isinstance(rule_, dict)
        )
        for r in stack.of_type("aws_ecr_repository"):
            ok = r.get("image_scanning_configuration.scan_on_push") is True or registry_scanning
            yield Outcome(stack.name, r, ok, "scanned on push" if ok else "images are not scanned on push")
        api = any(s.get("service") == "containerscanning.googleapis.com" for s in stack.of_type("google_project_service"))
        for r in stack.of_type("google_artifact_registry_repository"):
            mode = r.get("vulnerability_scanning_config.enablement_config")
            ok = mode == "INHERITED" and api
            why = (
                "scanned on push"
                if ok
                else f"vulnerability scanning {mode or 'not configured'}" + ("" if api else ", Container Scanning API not enabled")
            )
            yield Outcome(stack.name, r, ok, why)


@rule(
    "MLP007",
    "container registries have a lifecycle (cleanup) policy",
    "MEDIUM",
    "set keep_last (ECR) / keep_recent and delete_after_days (Artifact Registry) so old images expire",
)
def registry_lifecycle(ctx: Context) -> Iterator[Outcome]:
    for stack in ctx.stacks:
        policies = {str(p.get("repository")) for p in stack.of_type("aws_ecr_lifecycle_policy")}
        for r in stack.of_type("aws_ecr_repository"):
            refs = {f"${{{r.address}.name}}", f"${{{r.address}.id}}", str(r.get("name"))}
            ok = bool(policies & refs)
            yield Outcome(stack.name, r, ok, "lifecycle policy attached" if ok else "no aws_ecr_lifecycle_policy for this repository")
        for r in stack.of_type("google_artifact_registry_repository"):
            ok = bool(r.get("cleanup_policies")) and r.get("cleanup_policy_dry_run") is not True
            yield Outcome(stack.name, r, ok, "cleanup policies active" if ok else "no active cleanup policy (none, or dry run)")


# --- Lambda -----------------------------------------------------------------------------------


@rule(
    "MLP008",
    "Lambda function URLs require IAM auth in promoted environments (staging, production)",
    "HIGH",
    "set url_auth: AWS_IAM on the endpoint in the environment file",
)
def lambda_url_iam(ctx: Context) -> Iterator[Outcome]:
    if not ctx.promoted:
        return
    for stack in ctx.stacks:
        for r in stack.of_type("aws_lambda_function_url"):
            auth = r.get("authorization_type")
            yield Outcome(stack.name, r, auth == "AWS_IAM", f"authorization_type {auth}")


@rule(
    "MLP009",
    "every Lambda function has a reserved concurrency limit",
    "MEDIUM",
    "set reserved_concurrency on the endpoint in the environment file (it caps both cost and the load on the model)",
)
def lambda_reserved_concurrency(ctx: Context) -> Iterator[Outcome]:
    for stack in ctx.stacks:
        for r in stack.of_type("aws_lambda_function"):
            value = r.get("reserved_concurrent_executions")
            ok = value is not None and value != -1
            yield Outcome(stack.name, r, ok, f"reserved concurrency {value}" if ok else "no reserved concurrency: unbounded scale-out")


# --- budget -----------------------------------------------------------------------------------


@rule(
    "MLP010",
    "every environment has a budget with alerts on each of its clouds",
    "HIGH",
    "keep the budget section in the environment file (thresholds and recipients); the stacks synthesize it per cloud",
)
def budget_exists(ctx: Context) -> Iterator[Outcome]:
    main = next((s for s in ctx.stacks if s.name == ctx.env.name), ctx.stacks[0] if ctx.stacks else None)
    if main is None:
        return
    wanted = {"aws": "aws_budgets_budget", "gcp": "google_billing_budget"}
    for cloud, rtype in wanted.items():
        if getattr(ctx.env, cloud) is None:
            continue
        budgets = [r for s in ctx.stacks for r in s.of_type(rtype)]
        if not budgets:
            yield Outcome(main.name, None, False, f"no {rtype}: {cloud} spend has no budget")
            continue
        for r in budgets:
            if rtype == "aws_budgets_budget":
                alerts = [
                    n
                    for n in r.values.get("notification") or []
                    if n.get("subscriber_email_addresses") or n.get("subscriber_sns_topic_arns")
                ]
                amount = r.get("limit_amount")
            else:
                alerts = list(r.get("all_updates_rule.monitoring_notification_channels") or []) if r.get("threshold_rules") else []
                amount = r.get("amount.specified_amount.units")
            ok = bool(alerts) and amount not in (None, "", "0")
            yield Outcome(main.name, r, ok, f"{amount} USD, {len(alerts)} alerts" if ok else "budget without an amount or without alerts")


# --- secrets ----------------------------------------------------------------------------------


@rule(
    "MLP011",
    "no secret-looking value (keys, tokens, passwords) anywhere in the synthesized JSON",
    "CRITICAL",
    "read the secret at deploy time (Secrets Manager / Secret Manager reference, OIDC) instead of writing it into the stack; rotate it",
)
def no_secrets(ctx: Context) -> Iterator[Outcome]:
    for stack in ctx.stacks:
        found = list(find_secrets(stack.raw))
        for where, what in found:
            yield Outcome(stack.name, _resource_at(stack, where), False, f"{where}: {what}")
        if not found:
            yield Outcome(stack.name, None, True, "no secret-looking value")


def _resource_at(stack: Stack, json_path: str) -> Resource | None:
    """The resource a JSON path (``resource.<type>.<name>.…``) lies in."""
    parts = json_path.split(".")
    if len(parts) >= 3 and parts[0] == "resource":
        return stack.by_reference(f"${{{parts[1]}.{parts[2].split('[')[0]}}}")
    return None


def evaluate(ctx: Context, only: list[str] | None = None) -> Iterator[tuple[Rule, Outcome]]:
    for rule_id, r in RULES.items():
        if only is None or rule_id in only:
            for outcome in r.check(ctx):
                yield r, outcome
