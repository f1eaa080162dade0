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
from infra.cost.pricing import Ctx, compute_rates, free, gpu_usage_key, hours_item, item, node_hour_items, pricer, stored_gb_unknown
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


def pool_nodes(r: Resource, ctx: Ctx) -> tuple[float, float]:
    """(always-on nodes, node-hours known) of a node pool; memoized, Cloud NAT counts them."""
    key = f"pool:{r.address}"
    if key not in ctx.memo:
        ctx.memo[key] = _pool_cost(r, ctx)
    _, floor, hours = ctx.memo[key]
    return floor, hours


def _pool_cost(r: Resource, ctx: Ctx) -> tuple[list[CostItem], float, float]:
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
    machine = str(r.get("node_config.machine_type") or "e2-medium")  # GKE's default machine type
    spot = bool(r.get("node_config.spot") or r.get("node_config.preemptible"))
    on_demand = ctx.price("gcp", f"gce/{machine}", where)
    rate, rates, confirmed = compute_rates(ctx, "gcp", "gce", on_demand, spot, where)
    label = f"{machine} {'spot' if spot else 'on-demand'}"
    accelerators = r.get("node_config.guest_accelerator") or []
    gpu_note, extra = _accelerators(accelerators, on_demand, ctx, where, spot)
    gpu = on_demand.gpus or next(((p.key.split("/", 1)[1], n) for p, n in extra), None)
    items, hours = node_hour_items(
        ctx,
        r,
        label=label,
        floor_nodes=floor,
        gpu_key=gpu_usage_key(r),
        unit_rate=rate,
        rates=rates,
        on_demand=on_demand,
        confirmed=confirmed,
        gpu=gpu,
    )
    items = [_with_note(i, f"{zones_text}; {gpu_note}" if gpu_note else zones_text) for i in items]
    for gpu_price, count in extra:  # GPUs attached to N1 machines, priced per GPU-hour
        g_rate, g_rates, g_ok = compute_rates(ctx, "gcp", "gce", gpu_price, spot, where)
        scaled = {s: v * count for s, v in g_rates.items()}
        items.append(
            hours_item(
                f"{count} × {gpu_price.key.split('/')[1]} attached",
                hours,
                g_rate * count,
                scaled,
                gpu_price,
                g_ok,
                kind="fixed",
                key=f"attached {gpu_price.key}",
            )
        )
    size = float(r.get("node_config.disk_size_gb") or 100)
    dtype = str(r.get("node_config.disk_type") or "pd-balanced")
    items.append(
        item(
            f"boot disks ({size:g} GB {dtype} each)",
            size * hours / ctx.hours,
            ctx.price("gcp", f"disk/{dtype}", where),
            note="for the node-hours above",
            key="boot disks",
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
        ctx.memo["gke-node-hours"] = sum(pool_nodes(p, ctx)[1] for p in ctx.of_type("google_container_node_pool"))
    vms = ctx.memo["gke-node-hours"] / ctx.hours
    per_vm = ctx.price("gcp", "nat/vm-hour", r)
    cap = ctx.price("gcp", "nat/gateway-hour-cap", r)
    hourly = min(vms * per_vm.value, cap.value)
    gateway = CostItem(
        name=f"gateway: {vms:g} VMs × ${per_vm.value:g}/h, capped at ${cap.value:g}/h",
        kind="fixed",
        quantity=ctx.hours,
        unit="gateway-hour",
        unit_price=hourly,
        source=per_vm.source,
        confirmed=per_vm.confirmed and cap.confirmed,
        note="VMs: the GKE nodes of this stack (node-hours / 730)",
        key="gateway",
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


@pricer("google_kms_crypto_key")
def crypto_key(r: Resource, ctx: Ctx) -> list[CostItem]:
    rotation = r.values.get("rotation_period")
    note = f"rotated every {rotation}: each rotation adds an active version" if rotation else ""
    return [item("active key version", 1, ctx.price("gcp", "kms/key-version", r), note=note)]


@pricer("google_storage_bucket")
def storage_bucket(r: Resource, ctx: Ctx) -> list[CostItem]:
    return stored_gb_unknown("gcp", "gcs/standard-storage", r, ctx)
