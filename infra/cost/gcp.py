"""Pricers for the Google Cloud resource types our stacks use (prices: ``prices.yaml``, ``gcp``).

GPUs are priced once: an accelerator-optimized machine (A2, A3, G2) is priced with its built-in
GPUs, so a node pool that also declares them as ``guest_accelerator`` is not charged for them
again; only GPUs attached to N1 machines are priced on top. No sustained-use discount is applied
(Google gives none on GPUs, E2, A2, A3 or G2 machines).
"""

from __future__ import annotations

from dataclasses import replace

from infra.cost.catalog import Price
from infra.cost.model import CostItem
from infra.cost.pricing import Ctx, NodeHours, free, gpu_usage_key, item, node_hour_items, pricer, rates_for, stored_gb_unknown
from infra.synthesized.gpu_pools import gke_pool_zones
from infra.synthesized.reader import Resource

free(
    "no charge of its own",
    "google_compute_network",
    "google_compute_router",
    "google_compute_firewall",
    "google_project_iam_member",
    "google_project_iam_binding",
    "google_service_account",
    "google_service_account_iam_member",
    "google_project_service",
    "google_artifact_registry_repository_iam_member",
    "google_kms_key_ring",
    "google_kms_crypto_key_iam_member",
    "google_storage_bucket_iam_member",
    "google_iam_workload_identity_pool",
    "google_iam_workload_identity_pool_provider",
)
free("Cloud Billing budgets and their notification channels are free", "google_billing_budget", "google_monitoring_notification_channel")
free("its flow logs, if any, are Cloud Logging ingestion (usage.logs_gb on the cluster)", "google_compute_subnetwork")
free("custom dashboards are free", "google_monitoring_dashboard")
free("a repository link of a Cloud Build connection has no charge of its own", "google_cloudbuildv2_repository")


@pricer("google_monitoring_alert_policy")
def alert_policy(r: Resource, ctx: Ctx) -> list[CostItem]:
    conditions = len(r.get("conditions") or []) or 1
    return [item("alert conditions", conditions, ctx.price("gcp", "monitoring/alert-condition", r), key="alerting")]


@pricer("google_logging_project_bucket_config")
def log_retention(r: Resource, ctx: Ctx) -> list[CostItem]:
    days = int(r.get("retention_days") or 30)
    price = ctx.price("gcp", "logging/retention", r)
    logs = ctx.env.usage.logs_gb if ctx.env else None
    if days <= 30:
        return [item("retention beyond 30 days", 0, price, note=f"{days} days: within the free 30")]
    # at steady state, each month's logs are kept (days - 30) / 30 months beyond the free period
    extra_months = (days - 30) / 30
    quantity = None if logs is None else logs * extra_months
    note = f"{days} days: usage.logs_gb × {extra_months:.1f} months beyond the free 30"
    return [item("retention beyond 30 days", quantity, price, kind="usage", note=note, key="log retention")]


def _cluster(r: Resource, ctx: Ctx) -> Resource | None:
    ref = r.values.get("cluster")
    found = ctx.stack.by_reference(ref) if isinstance(ref, str) else None
    if found is None:  # a plan: the cluster's name instead of a reference
        found = next((c for c in ctx.of_type("google_container_cluster") if c.values.get("name") == ref), None)
    return found


def _is_zone(location: str) -> bool:
    return location.count("-") == 2 and len(location.rsplit("-", 1)[1]) == 1


def _zones(r: Resource, ctx: Ctx) -> tuple[int, str]:
    """How many zones a pool's per-zone autoscaling limits multiply by, and why (the one rule, shared)."""
    return gke_pool_zones(ctx.stack, r)


def pool_nodes(r: Resource, ctx: Ctx) -> tuple[float, NodeHours]:
    """(always-on nodes, node-hours known and at the maximum) of a node pool; memoized, Cloud NAT counts them."""
    key = f"pool:{r.address}"
    if key not in ctx.memo:
        ctx.memo[key] = _pool_cost(r, ctx)
    _, floor, hours = ctx.memo[key]
    return floor, hours


def _pool_cost(r: Resource, ctx: Ctx) -> tuple[list[CostItem], float, NodeHours]:
    cluster = _cluster(r, ctx)
    where = cluster or r
    zones, zones_text = _zones(r, ctx)
    auto = r.values.get("autoscaling") or {}
    if isinstance(auto, list):
        auto = auto[0] if auto else {}
    if auto.get("total_min_node_count") is not None:
        floor = float(auto["total_min_node_count"])
    elif auto:
        floor = float(auto.get("min_node_count") or 0) * zones
    else:
        floor = float(r.values.get("node_count") or r.values.get("initial_node_count") or 1) * zones
    if auto.get("total_max_node_count") is not None:
        most = float(auto["total_max_node_count"])
    elif auto:
        most = float(auto.get("max_node_count") or 0) * zones
    else:
        most = floor
    machine = str(r.get("node_config.machine_type") or "e2-medium")  # GKE's default machine type
    spot = bool(r.get("node_config.spot") or r.get("node_config.preemptible"))
    on_demand = ctx.price("gcp", f"gce/{machine}", where)
    # Spot VM prices are regional (one SKU per region): the pool's zones share its region's price
    rates = rates_for(ctx, "gcp", "gce", machine, on_demand, spot, where)
    label = f"{machine} {'spot' if spot else 'on-demand'}"
    accelerators = r.get("node_config.guest_accelerator") or []
    gpu_note, extra = _accelerators(accelerators, on_demand, ctx, where, spot)
    gpu = on_demand.gpus or next(((p.key.split("/", 1)[1], n) for p, n in extra), None)
    items, hours = node_hour_items(
        ctx,
        r,
        label=label,
        floor_nodes=floor,
        max_nodes=most,
        gpu_key=gpu_usage_key(r),
        rates=rates,
        on_demand=on_demand,
        gpu=gpu,
    )
    items = [_with_note(i, f"{zones_text}; {gpu_note}" if gpu_note else zones_text) for i in items]
    for gpu_price, count in extra:  # GPUs attached to N1 machines, priced per GPU-hour, floor and burst apart
        gpu_name = gpu_price.key.split("/")[1]
        g_rates = rates_for(ctx, "gcp", "gce", gpu_name, gpu_price, spot, where)
        attached, _ = node_hour_items(
            ctx,
            r,
            label=f"{count} × {gpu_name} attached",
            floor_nodes=floor,
            max_nodes=most,
            gpu_key=gpu_usage_key(r),
            rates=g_rates,
            on_demand=gpu_price,
            scale=count,
            key_prefix=f"attached {gpu_price.key}",
        )
        items += attached
    size = float(r.get("node_config.disk_size_gb") or 100)
    dtype = str(r.get("node_config.disk_type") or "pd-balanced")
    disk = ctx.price("gcp", f"disk/{dtype}", where)
    items.append(
        item(
            f"boot disks ({size:g} GB {dtype} each)",
            size * hours.known / ctx.hours,
            disk,
            note="for the node-hours above",
            key="boot disks",
            ceiling=size * hours.ceiling / ctx.hours * disk.value,
        )
    )
    return items, floor, hours


def _accelerators(accelerators: list[dict], machine: Price, ctx: Ctx, where: Resource, spot: bool) -> tuple[str, list[tuple[Price, int]]]:  # type: ignore[type-arg]
    builtin = machine.gpus
    extra: list[tuple[Price, int]] = []
    notes = []
    if builtin:
        notes.append(f"{builtin[1]} × {builtin[0]} included in the machine price")
    for acc in accelerators:
        atype, count = str(acc.get("type")), int(acc.get("count") or 0)
        if count == 0:
            continue
        if builtin and atype == builtin[0]:
            if count != builtin[1]:
                notes.append(f"guest_accelerator says {count}, the machine has {builtin[1]}")
            continue  # declared again on an A2/A3/G2 pool: not a second GPU
        extra.append((ctx.price("gcp", f"gpu/{atype}", where), count))
    return "; ".join(notes), extra


def _with_note(i: CostItem, note: str) -> CostItem:
    return replace(i, note="; ".join(n for n in (note, i.note) if n))


@pricer("google_container_node_pool")
def node_pool(r: Resource, ctx: Ctx) -> list[CostItem]:
    pool_nodes(r, ctx)
    items: list[CostItem] = ctx.memo[f"pool:{r.address}"][0]
    return items


@pricer("google_container_cluster")
def container_cluster(r: Resource, ctx: Ctx) -> list[CostItem]:
    location = str(r.values.get("location") or "")
    fee = ctx.price("gcp", "gke/cluster", r)
    credit = ctx.price("gcp", "gke/free-tier-credit", r)
    note = (
        f"zonal: the ${credit.value:g}/month free-tier credit covers one zonal cluster per billing account (not subtracted)"
        if _is_zone(location)
        else "regional: the free-tier credit does not apply"
    )
    items = [item("cluster management fee", ctx.hours, fee, note=note)]
    if not r.values.get("remove_default_node_pool"):
        items += _pool_cost(r, ctx)[0]  # the default pool's node_config and initial_node_count
    logs = ctx.share(ctx.usage.logs_gb, "google_container_cluster")
    items.append(item("Cloud Logging ingestion", logs, ctx.price("gcp", "logging/ingestion", r), kind="usage", note="usage.logs_gb"))
    return items


@pricer("google_compute_router_nat")
def router_nat(r: Resource, ctx: Ctx) -> list[CostItem]:
    if "gke-node-hours" not in ctx.memo:
        pools = [pool_nodes(p, ctx)[1] for p in ctx.of_type("google_container_node_pool")]
        ctx.memo["gke-node-hours"] = (sum(h.known for h in pools), sum(h.ceiling for h in pools))
    known, most = ctx.memo["gke-node-hours"]
    vms, vms_max = known / ctx.hours, most / ctx.hours
    per_vm = ctx.price("gcp", "nat/vm-hour", r)
    cap = ctx.price("gcp", "nat/gateway-hour-cap", r)
    hourly = min(vms * per_vm.value, cap.value)
    base = item(f"gateway: {vms:g} VMs × ${per_vm.value:g}/h, capped at ${cap.value:g}/h", ctx.hours, per_vm, also=[cap])
    gateway = replace(
        base,
        unit="gateway-hour",
        unit_price=hourly,
        note="VMs: the GKE nodes of this stack (node-hours / 730)",
        key="gateway",
        ceiling=min(vms_max * per_vm.value, cap.value) * ctx.hours,
    )
    ips = r.values.get("nat_ips") or []
    n_ips = len(ips) if r.values.get("nat_ip_allocate_option") == "MANUAL_ONLY" else 1
    ip_note = "" if ips else "AUTO_ONLY: at least one; Google adds addresses as ports run out"
    items = [
        gateway,
        item(
            f"{n_ips} external IP address{'es' if n_ips != 1 else ''}",
            n_ips * ctx.hours,
            ctx.price("gcp", "nat/ip-hour", r),
            note=ip_note,
            key="external IPs",
        ),
    ]
    gb = ctx.share(ctx.usage.nat_gb, "google_compute_router_nat")
    items.append(item("data processed", gb, ctx.price("gcp", "nat/gb", r), kind="usage", note="usage.nat_gb"))
    egress = ctx.share(ctx.usage.egress_gb, "google_compute_router_nat")
    items.append(item("internet egress", egress, ctx.price("gcp", "network/internet-egress", r), kind="usage", note="usage.egress_gb"))
    return items


@pricer("google_artifact_registry_repository")
def artifact_registry(r: Resource, ctx: Ctx) -> list[CostItem]:
    items = [item("image storage", ctx.usage.registry_gb, ctx.price("gcp", "ar/storage", r), kind="usage", note="usage.registry_gb")]
    scanning = r.get("vulnerability_scanning_config.enablement_config") or "INHERITED"
    if scanning != "DISABLED" and r.values.get("format", "DOCKER") == "DOCKER":
        items.append(
            item(
                "vulnerability scanning",
                None,
                ctx.price("gcp", "artifact-analysis/image-scan", r),
                kind="usage",
                note="images pushed per month: not in the environment file",
            )
        )
    return items


@pricer("google_cloudbuild_trigger")
def build_trigger(r: Resource, ctx: Ctx) -> list[CostItem]:
    minutes = ctx.share(ctx.usage.build_minutes, "google_cloudbuild_trigger")
    return [item("build minutes", minutes, ctx.price("gcp", "build/minute", r), kind="usage", note="usage.build_minutes")]


def _seconds(duration: object) -> float | None:
    """``7776000s`` (a Terraform duration in seconds) as a number."""
    if isinstance(duration, str) and duration.endswith("s"):
        try:
            return float(duration[:-1])
        except ValueError:
            return None
    return None


@pricer("google_kms_crypto_key")
def crypto_key(r: Resource, ctx: Ctx) -> list[CostItem]:
    period = _seconds(r.values.get("rotation_period"))
    price = ctx.price("gcp", "kms/key-version", r)
    if period:
        days = period / 86400
        versions = 1 + int(365 // days)
        version_item = item(
            f"active key versions a year on (rotated every {days:g} days)",
            versions,
            price,
            note=f"1 + {versions - 1} rotations in a year; older versions are billed until destroyed, so the count keeps growing",
            key="active key version",
        )
    else:
        version_item = item("active key version", 1, price)
    requests = ctx.share(ctx.usage.kms_requests_per_month, "google_kms_crypto_key")
    return [
        version_item,
        item(
            "requests",
            None if requests is None else requests / 1e4,
            ctx.price("gcp", "kms/requests", r),
            kind="usage",
            note="usage.kms_requests_per_month",
            key="requests",
        ),
    ]


@pricer("google_storage_bucket")
def storage_bucket(r: Resource, ctx: Ctx) -> list[CostItem]:
    return stored_gb_unknown("gcp", "gcs/standard-storage", r, ctx)
