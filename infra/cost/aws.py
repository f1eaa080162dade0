"""Pricers for the AWS resource types our stacks use (prices: ``prices.yaml``, ``aws``)."""

from __future__ import annotations

from dataclasses import replace

from environments import facts
from infra.cost.model import CostItem
from infra.cost.pricing import Ctx, NodeHours, free, gpu_usage_key, item, node_hour_items, pricer, rates_for, stored_gb_unknown
from infra.synthesized.reader import Resource

SECONDS_PER_HOUR = 3600

free(
    "no charge of its own",
    "aws_vpc",
    "aws_subnet",
    "aws_route",
    "aws_route_table",
    "aws_route_table_association",
    "aws_internet_gateway",
    "aws_security_group",
    "aws_security_group_rule",
    "aws_default_security_group",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
    "aws_iam_role",
    "aws_iam_policy",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_iam_openid_connect_provider",
    "aws_kms_alias",
    "aws_ecr_lifecycle_policy",
    "aws_ecr_repository_policy",
    "aws_s3_bucket_versioning",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_eks_pod_identity_association",
    "aws_eks_access_entry",
    "aws_eks_access_policy_association",
    "aws_autoscaling_group_tag",
    "aws_lambda_permission",
    "aws_sns_topic_subscription",
)
free("EKS add-ons are free; they run on the cluster's nodes, priced with the node groups", "aws_eks_addon")
CLOUDWATCH_ADDON = "amazon-cloudwatch-observability"
free("its nodes are priced with the node group that uses it", "aws_launch_template")
free("requests are priced with the Lambda function", "aws_lambda_function_url")
free("the logs it writes are priced as ingestion of its log group", "aws_flow_log")
free("access logs are objects of the bucket they log to, priced as its storage", "aws_s3_bucket_logging")
free("S3 events to EventBridge's default bus are AWS service events, not billed", "aws_s3_bucket_notification")
free("alarm e-mails: the first 1,000 notifications a month are free", "aws_sns_topic")
free("a webhook has no charge; the builds it starts are priced with their project", "aws_codebuild_webhook")


@pricer("aws_codebuild_project")
def codebuild_project(r: Resource, ctx: Ctx) -> list[CostItem]:
    """The CI runner in the VPC: billed per build minute of the jobs it runs (usage not in the file)."""
    compute = str(r.get("environment.compute_type") or "BUILD_GENERAL1_SMALL").removeprefix("BUILD_GENERAL1_").lower()
    return [
        item(
            "CI job minutes",
            None,
            ctx.price("aws", f"codebuild/linux-{compute}", r),
            kind="usage",
            note="the jobs that reach the cluster API",
        )
    ]


@pricer("aws_cloudwatch_metric_alarm")
def cloudwatch_alarm(r: Resource, ctx: Ctx) -> list[CostItem]:
    metrics = [q for q in r.get("metric_query") or [] if q.get("metric")] or [None]
    return [item("alarm metrics", len(metrics), ctx.price("aws", "cloudwatch/alarm-metric", r), key="alarm")]


@pricer("aws_cloudwatch_dashboard")
def cloudwatch_dashboard(r: Resource, ctx: Ctx) -> list[CostItem]:
    return [item("dashboard", 1, ctx.price("aws", "cloudwatch/dashboard", r), key="dashboard")]


@pricer("aws_s3_bucket_replication_configuration")
def s3_replication(r: Resource, ctx: Ctx) -> list[CostItem]:
    price = ctx.price("aws", "s3/replication-transfer", r)
    return [item("replicated GB", None, price, kind="usage", note="GB replicated: not in the environment file", key="replication")]


@pricer("aws_eks_cluster")
def eks_cluster(r: Resource, ctx: Ctx) -> list[CostItem]:
    support = r.get("upgrade_policy.support_type") or "EXTENDED"
    price = ctx.price("aws", "eks/cluster-standard", r)
    note = (
        "upgrade_policy STANDARD: upgraded at the end of standard support, never billed extended support"
        if support == "STANDARD"
        else f"extended support is on: ${ctx.price('aws', 'eks/cluster-extended', r).value:g}/h once version {r.get('version')} leaves standard support"
    )
    return [item(f"control plane ({support.lower()} support)", ctx.hours, price, note=note, key="control plane")]


def _launch_template(r: Resource, ctx: Ctx) -> Resource | None:
    ref = r.get("launch_template.id")
    if isinstance(ref, str):
        lt = ctx.stack.by_reference(ref)
        if lt is not None:
            return lt
    # a plan has the id unknown until apply: our launch templates share the node group's name
    name = r.get("node_group_name")
    return next((lt for lt in ctx.of_type("aws_launch_template") if lt.values.get("name") == name), None)


def _disk(r: Resource, ctx: Ctx) -> tuple[float, str]:
    lt = _launch_template(r, ctx)
    if lt is not None:
        for mapping in lt.values.get("block_device_mappings") or []:
            ebs = mapping.get("ebs") or {}
            if isinstance(ebs, list):
                ebs = ebs[0] if ebs else {}
            if ebs.get("volume_size"):
                return float(ebs["volume_size"]), str(ebs.get("volume_type") or "gp3")
    return float(r.values.get("disk_size") or 20), "gp2"  # EKS's default node volume


def _zones(r: Resource, ctx: Ctx) -> list[str]:
    """The availability zones of a node group's subnets (a plan: subnet ids unknown, no zones)."""
    zones = []
    for ref in r.values.get("subnet_ids") or []:
        subnet = ctx.stack.by_reference(ref) if isinstance(ref, str) else None
        zone = subnet.values.get("availability_zone") if subnet is not None else None
        if isinstance(zone, str) and not zone.startswith("${") and zone not in zones:
            zones.append(zone)
    return zones


@pricer("aws_eks_node_group")
def eks_node_group(r: Resource, ctx: Ctx) -> list[CostItem]:
    return node_group(r, ctx)[0]


def node_group(r: Resource, ctx: Ctx) -> tuple[list[CostItem], NodeHours]:
    """A managed node group's items and node-hours (memoized: Container Insights counts the nodes)."""
    key = f"eks-group:{r.address}"
    if key not in ctx.memo:
        ctx.memo[key] = _node_group(r, ctx)
    found: tuple[list[CostItem], NodeHours] = ctx.memo[key]
    return found


def _node_group(r: Resource, ctx: Ctx) -> tuple[list[CostItem], NodeHours]:
    types = r.get("instance_types") or ["t3.medium"]  # EKS's default instance type
    itype = str(types[0])
    spot = r.get("capacity_type") == "SPOT"
    on_demand = ctx.price("aws", f"ec2/{itype}", r)
    zones = _zones(r, ctx)
    rates = rates_for(ctx, "aws", "ec2", itype, on_demand, spot, r, zones if spot else ())
    label = f"{itype} {'spot' if spot else 'on-demand'}"
    note = f"priced as {itype}, the first of {len(types)} types" if len(types) > 1 else ""
    gpu_key = gpu_usage_key(r)
    scaling = r.values.get("scaling_config") or {}
    if isinstance(scaling, list):
        scaling = scaling[0] if scaling else {}
    # GPU groups: the autoscaler's floor (min); other groups run their desired size
    floor = float(scaling.get("min_size") or 0) if gpu_key else float(scaling.get("desired_size") or scaling.get("min_size") or 0)
    most = float(scaling.get("max_size") or floor)
    gpu = facts.aws_gpu(itype)
    items, hours = node_hour_items(
        ctx,
        r,
        label=label,
        floor_nodes=floor,
        max_nodes=most,
        gpu_key=gpu_key,
        rates=rates,
        on_demand=on_demand,
        gpu=(gpu.model, gpu.count) if gpu else None,
    )
    if note and items:
        items[0] = replace(items[0], note="; ".join(n for n in (note, items[0].note) if n))
    size, vtype = _disk(r, ctx)
    disk = ctx.price("aws", f"ebs/{vtype}", r)
    items.append(
        item(
            f"node volumes ({size:g} GB {vtype} each)",
            size * hours.known / ctx.hours,
            disk,
            note="for the node-hours above",
            key="node volumes",
            ceiling=size * hours.ceiling / ctx.hours * disk.value,
        )
    )
    return items, hours


@pricer("aws_nat_gateway")
def nat_gateway(r: Resource, ctx: Ctx) -> list[CostItem]:
    items = [item("gateway hours", ctx.hours, ctx.price("aws", "vpc/nat-gateway-hour", r))]
    if r.values.get("connectivity_type") == "private":
        return items
    gb = ctx.share(ctx.usage.nat_gb, "aws_nat_gateway")
    items.append(
        item("data processed", gb, ctx.price("aws", "vpc/nat-gateway-gb", r), kind="usage", note=_shared("nat_gb", ctx, "aws_nat_gateway"))
    )
    egress = ctx.share(ctx.usage.egress_gb, "aws_nat_gateway")
    items.append(
        item(
            "data transfer out to the internet",
            egress,
            ctx.price("aws", "data-transfer/internet-out", r),
            kind="usage",
            note=_shared("egress_gb", ctx, "aws_nat_gateway"),
        )
    )
    return items


def _shared(field: str, ctx: Ctx, counter: str) -> str:
    n = ctx.counts.get(counter, 1)
    return f"usage.{field}" + (f", split over {n}" if n > 1 else "")


@pricer("aws_eip")
def eip(r: Resource, ctx: Ctx) -> list[CostItem]:
    return [item("public IPv4 address", ctx.hours, ctx.price("aws", "vpc/public-ipv4-hour", r))]


@pricer("aws_lambda_function")
def lambda_function(r: Resource, ctx: Ctx) -> list[CostItem]:
    arch = (r.get("architectures") or ["x86_64"])[0]
    memory_gb = float(r.values.get("memory_size") or 128) / 1024
    requests = ctx.share(ctx.usage.requests_per_month, "aws_lambda_function")
    duration_s = ctx.usage.lambda_avg_duration_ms / 1000
    gb_seconds = None if requests is None else requests * duration_s * memory_gb
    return [
        item(
            "requests",
            None if requests is None else requests / 1e6,
            ctx.price("aws", "lambda/requests", r),
            kind="usage",
            note=_shared("requests_per_month", ctx, "aws_lambda_function"),
        ),
        item(
            f"duration ({memory_gb * 1024:g} MB, {arch})",
            gb_seconds,
            ctx.price("aws", f"lambda/duration-{arch}", r),
            kind="usage",
            key="duration",
            note=f"requests × {ctx.usage.lambda_avg_duration_ms} ms (usage.lambda_avg_duration_ms) × {memory_gb:g} GB",
        ),
        *_xray(r, requests, ctx),
    ]


def _xray(r: Resource, requests: float | None, ctx: Ctx) -> list[CostItem]:
    """Active tracing records the requests X-Ray's default sampling rule picks: the first request
    each second, and a share of the rest (requests assumed spread evenly over the month)."""
    if r.get("tracing_config.mode") != "Active":
        return []
    price = ctx.price("aws", "xray/traces-recorded", r)
    reservoir = ctx.price("aws", "xray/sampling-reservoir", r)
    rate = ctx.price("aws", "xray/sampling-rate-pct", r)
    seconds = ctx.hours * SECONDS_PER_HOUR
    traces = None
    if requests is not None:
        first = min(requests, seconds * reservoir.value)
        traces = first + (requests - first) * rate.value / 100
    note = (
        f"Active tracing, default sampling: {reservoir.value:g} request a second ({seconds * reservoir.value:,.0f} a month) "
        f"and {rate.value:g} % of the rest"
    )
    return [
        item(
            "X-Ray traces recorded",
            None if traces is None else traces / 1e6,
            price,
            kind="usage",
            note=note,
            key="xray",
            also=[reservoir, rate],
        )
    ]


@pricer("aws_lambda_provisioned_concurrency_config")
def provisioned_concurrency(r: Resource, ctx: Ctx) -> list[CostItem]:
    fn = next((f for f in ctx.of_type("aws_lambda_function") if f.values.get("function_name") == r.values.get("function_name")), None)
    if fn is None and isinstance(r.values.get("function_name"), str):
        fn = ctx.stack.by_reference(str(r.values["function_name"]))
    memory_gb = float((fn.values.get("memory_size") if fn else None) or 128) / 1024
    arch = ((fn.get("architectures") if fn else None) or ["x86_64"])[0]
    concurrency = float(r.values.get("provisioned_concurrent_executions") or 0)
    gb_seconds = concurrency * memory_gb * ctx.hours * SECONDS_PER_HOUR
    return [
        item(
            f"{concurrency:g} provisioned × {memory_gb * 1024:g} MB",
            gb_seconds,
            ctx.price("aws", f"lambda/provisioned-{arch}", r),
            key="provisioned concurrency",
        )
    ]


@pricer("aws_ecr_repository")
def ecr_repository(r: Resource, ctx: Ctx) -> list[CostItem]:
    return [item("image storage", ctx.usage.registry_gb, ctx.price("aws", "ecr/storage", r), kind="usage", note="usage.registry_gb")]


@pricer("aws_s3_bucket")
def s3_bucket(r: Resource, ctx: Ctx) -> list[CostItem]:
    return stored_gb_unknown("aws", "s3/standard-storage", r, ctx)


@pricer("aws_kms_key")
def kms_key(r: Resource, ctx: Ctx) -> list[CostItem]:
    items = [item("customer managed key", 1, ctx.price("aws", "kms/key", r), key="customer managed key")]
    if r.values.get("enable_key_rotation"):
        period = int(r.values.get("rotation_period_in_days") or 365)  # KMS rotates yearly unless told otherwise
        items.append(
            item(
                f"key rotations (every {period} days)",
                2,
                ctx.price("aws", "kms/key-rotation", r),
                note=f"the steady state, reached after two rotations ({2 * period} days); the first year costs the key alone",
                key="key rotations",
            )
        )
    requests = ctx.share(ctx.usage.kms_requests_per_month, "aws_kms_key")
    items.append(
        item(
            "requests",
            None if requests is None else requests / 1e4,
            ctx.price("aws", "kms/requests", r),
            kind="usage",
            note=_shared("kms_requests_per_month", ctx, "aws_kms_key"),
            key="requests",
        )
    )
    return items


@pricer("aws_cloudwatch_log_group")
def log_group(r: Resource, ctx: Ctx) -> list[CostItem]:
    gb = ctx.share(ctx.usage.logs_gb, "aws_cloudwatch_log_group")
    retention = r.values.get("retention_in_days")
    days_per_month = ctx.hours / 24
    if retention:
        months = float(retention) / days_per_month
        stored = None if gb is None else gb * months
        note = f"kept {retention} days: {months:.1f} months of ingestion stored at steady state (billed compressed, so at most this)"
    else:
        stored, note = None, "never expires: the stored GB grow every month"
    return [
        item(
            "log ingestion",
            gb,
            ctx.price("aws", "cloudwatch/logs-ingestion", r),
            kind="usage",
            note=_shared("logs_gb", ctx, "aws_cloudwatch_log_group"),
        ),
        item("log storage", stored, ctx.price("aws", "cloudwatch/logs-storage", r), kind="usage", note=note, key="log storage"),
    ]


@pricer("aws_eks_addon")
def eks_addon(r: Resource, ctx: Ctx) -> list[CostItem]:
    """The CloudWatch observability add-on turns on Container Insights: its metrics are billed as
    custom metrics, per cluster and per node (the nodes of this stack's node groups)."""
    if r.values.get("addon_name") != CLOUDWATCH_ADDON:
        return []  # free: see the reason registered for aws_eks_addon
    metric = ctx.price("aws", "cloudwatch/custom-metric", r)
    per_cluster = ctx.price("aws", "container-insights/metrics-per-cluster", r)
    per_node = ctx.price("aws", "container-insights/metrics-per-node", r)
    if "eks-node-hours" not in ctx.memo:  # the stack's nodes, counted once for all its clusters' add-ons
        groups = [node_group(g, ctx)[1] for g in ctx.of_type("aws_eks_node_group")]
        ctx.memo["eks-node-hours"] = (sum(h.known for h in groups), sum(h.ceiling for h in groups))
    known, ceiling = ctx.memo["eks-node-hours"]
    nodes, most = known / ctx.hours, ceiling / ctx.hours
    metrics = per_cluster.value + per_node.value * nodes
    note = (
        f"{per_cluster.value:g} per cluster + {per_node.value:g} per node × {nodes:g} nodes (node-hours / 730); "
        "pods add 9 each, services 6 (not counted: not in the environment file)"
    )
    return [
        item(
            "Container Insights metrics",
            metrics,
            metric,
            note=note,
            key="container insights",
            ceiling=(per_cluster.value + per_node.value * most) * metric.value,
            also=[per_cluster, per_node],
        )
    ]


@pricer("aws_sqs_queue")
def sqs_queue(r: Resource, ctx: Ctx) -> list[CostItem]:
    return [item("requests", None, ctx.price("aws", "sqs/requests", r), kind="usage", note="a dead-letter queue sees only failed events")]


@pricer("aws_budgets_budget")
def budget(r: Resource, ctx: Ctx) -> list[CostItem]:
    price = ctx.price("aws", "budgets/budget-day", r)
    n = ctx.counts.get("aws_budgets_budget", 1)
    if n <= 2:
        return [item("budget", 0, price, note="the first two budgets of an account are free")]
    return [item("budget", ctx.hours / 24, price, note=f"{n} budgets in this stack; only two are free")]
