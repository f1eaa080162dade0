"""The pricer registry and what a pricer gets to work with.

A pricer turns one resource into cost items; it is registered for its resource types with
:func:`pricer`. Types that cost nothing by themselves are registered with :func:`free` and a
reason. Any other type is reported *unsupported*: never a silent $0. The cloud modules
(:mod:`infra.cost.aws`, :mod:`infra.cost.gcp`) register themselves when first imported, which
:func:`registry` does lazily.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from environments.schema import Environment, Usage
from infra.cost.catalog import Catalog, Price
from infra.cost.model import CostItem
from infra.synthesized.reader import Resource, Stack

Pricer = Callable[[Resource, "Ctx"], list[CostItem]]
_PRICERS: dict[str, Pricer] = {}
_FREE: dict[str, str] = {}
_ZONE = re.compile(r"^([a-z]+-[a-z]+\d)-[a-z]$")  # us-central1-a
_GPU_KEY = re.compile(r"(?:^|/)(aws|gcp)-gpu-([a-z0-9-]+?)(?:[_/]|$)")


def pricer(*types: str) -> Callable[[Pricer], Pricer]:
    def register(fn: Pricer) -> Pricer:
        for t in types:
            _PRICERS[t] = fn
        return fn

    return register


def free(reason: str, *types: str) -> None:
    for t in types:
        _FREE[t] = reason


def registry() -> tuple[dict[str, Pricer], dict[str, str]]:
    from infra.cost import aws, gcp  # noqa: F401  (they register their pricers on import)

    return _PRICERS, _FREE


def cloud_of(rtype: str) -> str:
    if rtype.startswith("aws_"):
        return "aws"
    if rtype.startswith("google_"):
        return "gcp"
    if rtype.startswith(("helm_", "kubernetes_")):
        return "kubernetes"
    return "other"


def gpu_usage_key(resource: Resource) -> str | None:
    """``aws/l4`` for the node group built by the ``aws-gpu-l4`` construct (path or, in a plan, name)."""
    m = _GPU_KEY.search(resource.path) or _GPU_KEY.search(resource.name)
    return f"{m[1]}/{m[2]}" if m else None


@dataclass
class Ctx:
    """What pricing one stack needs: its environment's usage, its regions, the catalog, and
    counts of resources that share one usage figure."""

    stack: Stack
    env: Environment | None
    catalog: Catalog
    regions: dict[str, str]  # cloud -> region
    counts: dict[str, int] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)
    today: dt.date = field(default_factory=dt.date.today)

    def of_type(self, rtype: str) -> list[Resource]:
        key = f"type:{rtype}"
        if key not in self.memo:
            self.memo[key] = [Resource(rtype, n, v) for n, v in self.stack.raw.get("resource", {}).get(rtype, {}).items()]
        found: list[Resource] = self.memo[key]
        return found

    @property
    def hours(self) -> float:
        return self.catalog.hours_per_month

    @property
    def usage(self) -> Usage:
        return self.env.usage if self.env else Usage()

    def region(self, cloud: str, resource: Resource | None = None) -> str:
        """The resource's own region (a zone counts as its region; GCS spells it in capitals), else
        the provider's (also for ``global`` resources)."""
        if resource is not None:
            own = resource.values.get("region") or resource.values.get("location")
            if isinstance(own, str) and not own.startswith("${") and own.lower() != "global":
                own = own.lower()
                zone = _ZONE.match(own)
                return zone[1] if zone else own
        return self.regions.get(cloud, "")

    def price(self, cloud: str, key: str, resource: Resource | None = None) -> Price:
        return self.catalog.get(cloud, self.region(cloud, resource), key)

    def share(self, total: float | None, counter: str) -> float | None:
        """An environment-wide usage figure split evenly among the stack's ``counter`` resources."""
        if total is None:
            return None
        return total / max(1, self.counts.get(counter, 1))


def dates(prices: Iterable[Price]) -> tuple[dt.date | None, dt.date | None]:
    """(the oldest date the prices describe, the first day one of them is stale)."""
    ps = list(prices)
    if not ps:
        return None, None
    return min(p.dated for p in ps), min(p.stale_after for p in ps)


def item(
    name: str,
    quantity: float | None,
    price: Price,
    *,
    kind: str = "fixed",
    note: str = "",
    rates: dict[str, float] | None = None,
    key: str = "",
    ceiling: float | None = None,
    also: Iterable[Price] = (),
) -> CostItem:
    """A cost item at ``price``; ``also``: other prices its figure depends on (confirmed and staleness)."""
    notes = f"{note}; {price.note}" if note and price.note else note or price.note
    if also:
        used = [price, *also]
        read, stale_after = dates(used)
        confirmed = all(p.trusted for p in used)
    else:  # the hot path: one price
        read, stale_after, confirmed = price.dated, price.stale_after, price.trusted
    return CostItem(
        name=name,
        kind="usage" if kind == "usage" else "fixed",
        quantity=quantity,
        unit=price.unit,
        unit_price=price.value,
        source=price.source,
        confirmed=confirmed,
        note=notes,
        rates=rates,
        key=key,
        read=read,
        stale_after=stale_after,
        ceiling=ceiling,
    )


def stored_gb_unknown(cloud: str, key: str, r: Resource, ctx: Ctx) -> list[CostItem]:
    """A bucket: storage is usage the environment file does not give, so the unit price shows."""
    return [item("standard storage", None, ctx.price(cloud, key, r), kind="usage", note="stored GB: not in the environment file")]


def family_of(service: str, machine: str) -> str:
    """``g6`` for ec2 ``g6.2xlarge``, ``g2`` for gce ``g2-standard-8``; an attached GPU is its own family."""
    if machine.startswith("nvidia-"):
        return machine
    return machine.split(".", 1)[0] if service == "ec2" else machine.split("-", 1)[0]


@dataclass(frozen=True)
class Rates:
    """Unit prices of one machine's hours per scenario: ``baseline`` for the committed baseline (a
    pool's floor, the always-on nodes), ``burst`` for hours above it (never committed)."""

    configured: float
    baseline: dict[str, float]
    burst: dict[str, float]
    prices: tuple[Price, ...]
    note: str = ""

    @property
    def confirmed(self) -> bool:
        return all(p.trusted for p in self.prices)


def _usd(p: Price) -> str:
    return f"${p.value:,.4f}".rstrip("0").rstrip(".")


def rates_for(
    ctx: Ctx,
    cloud: str,
    service: str,
    machine: str,
    on_demand: Price,
    spot: bool,
    resource: Resource,
    zones: Iterable[str] = (),
) -> Rates:
    """The rates of ``machine`` (``g6.2xlarge`` on ``ec2``, ``g2-standard-8`` on ``gce``).

    Spot (only looked up for a spot pool): the mean over the pool's ``zones`` of each zone's price
    (``spot/ec2/g6.2xlarge@us-east-1a``, what a refresh reads), a zone without one at the type's
    regional price (``spot/gce/g2-standard-8``) or else at the family's factor (``spot/ec2/g6``).
    Commitments: the type's committed price (``commit-1y/ec2/t3.large``) or the family's factor.
    Commitments apply to the baseline only; spot stays spot."""
    od = on_demand.value
    region = ctx.region(cloud, resource)
    family = family_of(service, machine)
    cat = ctx.catalog
    used: list[Price] = [on_demand]
    notes = []

    def scenario_rate(scenario: str) -> tuple[float, str]:
        own = cat.find(cloud, region, f"{scenario}/{service}/{machine}")
        if own is not None and own.kind == "usd":  # a price read for this type (an attached GPU's key is its family's)
            used.append(own)
            return own.value, f"{scenario} {_usd(own)}/h ({machine})"
        factor = cat.get(cloud, region, f"{scenario}/{service}/{family}")
        used.append(factor)
        return od * factor.value, f"{scenario} {factor.value:g} × on-demand ({family})"

    configured = od
    spot_rate = od
    if spot:
        fallback, fallback_text = scenario_rate("spot")
        zone_list = list(zones)
        if zone_list:
            per_zone = []
            for zone in zone_list:
                z = cat.find(cloud, region, f"spot/{service}/{machine}@{zone}")
                if z is not None:
                    used.append(z)
                per_zone.append((zone, z.value if z is not None else fallback, z is not None))
            spot_rate = sum(v for _, v, _ in per_zone) / len(per_zone)
            if any(found for _, _, found in per_zone):
                shown = ", ".join(f"{zone} ${v:,.4f}" + ("" if found else " (regional)") for zone, v, found in per_zone)
                notes.append(f"spot: mean of {shown}")
            else:
                notes.append(f"spot: {fallback_text}")
        else:
            spot_rate = fallback
            notes.append(f"spot: {fallback_text}")
        configured = spot_rate
    committed = {}
    for s in ("commit-1y", "commit-3y"):
        committed[s] = spot_rate if spot else scenario_rate(s)[0]
    baseline = {"configured": configured, "on-demand": od, **committed}
    burst = {"configured": configured, "on-demand": od, "commit-1y": configured, "commit-3y": configured}
    return Rates(configured, baseline, burst, tuple(used), "; ".join(notes))


def hours_item(
    name: str,
    node_hours: float | None,
    unit_rate: float,
    rates: dict[str, float],
    on_demand: Price,
    confirmed: bool,
    *,
    kind: str,
    note: str = "",
    key: str = "",
    gpu: tuple[str, int] | None = None,
    prices: Iterable[Price] = (),
    ceiling: float | None = None,
) -> CostItem:
    read, stale_after = dates([on_demand, *prices])
    return CostItem(
        name=name,
        kind="usage" if kind == "usage" else "fixed",
        quantity=node_hours,
        unit="node-hour",
        unit_price=unit_rate,
        source=on_demand.source,
        confirmed=confirmed,
        note="; ".join(n for n in (note, on_demand.note) if n),
        rates=rates,
        key=key,
        gpu=gpu[0] if gpu else "",
        gpus=gpu[1] if gpu else 0,
        read=read,
        stale_after=stale_after,
        ceiling=ceiling,
    )


@dataclass(frozen=True)
class NodeHours:
    """What a node group's hours came to: known node-hours a month (floor + usage above it) and the
    node-hours at its maximum (the ceiling)."""

    known: float
    ceiling: float


def node_hour_items(
    ctx: Ctx,
    resource: Resource,
    *,
    label: str,
    floor_nodes: float,
    max_nodes: float,
    gpu_key: str | None,
    rates: Rates,
    on_demand: Price,
    gpu: tuple[str, int] | None = None,
    scale: float = 1.0,
    key_prefix: str = "node-hours",
) -> tuple[list[CostItem], NodeHours]:
    """Node-hours of a node group: the floor (always-on nodes × 730) is fixed and is the committed
    baseline; a GPU pool's hours above it come from ``usage.gpu_node_hours`` (or show the unit
    price), never committed. The ceiling holds every node the group may run (``max_nodes``) all
    month. ``scale`` multiplies the unit rates (attached GPUs per node)."""
    floor_hours = floor_nodes * ctx.hours
    ceiling_hours = max(max_nodes, floor_nodes) * ctx.hours
    base = {s: v * scale for s, v in rates.baseline.items()}
    burst = {s: v * scale for s, v in rates.burst.items()}
    unit = rates.configured * scale
    items = []
    # a group without a usage figure (a system group) runs its floor; its burst room shows in the ceiling
    floor_ceiling = None if gpu_key is not None else ceiling_hours * unit
    if floor_hours or floor_ceiling:
        items.append(
            hours_item(
                f"{label}: {floor_nodes:g} always-on × {ctx.hours:g} h",
                floor_hours,
                unit,
                base,
                on_demand,
                rates.confirmed,
                kind="fixed",
                key=f"{key_prefix}:floor",
                gpu=gpu,
                note=rates.note,
                prices=rates.prices,
                ceiling=floor_ceiling,
            )
        )
    known = floor_hours
    if gpu_key is not None:
        declared = ctx.usage.gpu_node_hours.get(gpu_key)
        above = None if declared is None else max(0.0, declared - floor_hours)
        note = (
            f"usage.gpu_node_hours[{gpu_key}] = {declared:g} h, less the floor"
            if declared is not None
            else f"give usage.gpu_node_hours[{gpu_key}]"
        )
        room = ceiling_hours - floor_hours
        if declared is None or above or room:
            items.append(
                hours_item(
                    f"{label}: node-hours above the floor",
                    above,
                    unit,
                    burst,
                    on_demand,
                    rates.confirmed,
                    kind="usage",
                    note="; ".join(n for n in (note, f"up to {max_nodes:g} nodes: {room:g} h more at most", rates.note) if n),
                    key=f"{key_prefix}:above",
                    gpu=gpu,
                    prices=rates.prices,
                    ceiling=room * unit,
                )
            )
        known += above or 0.0
    return items, NodeHours(known, ceiling_hours)


free("runs on the cluster's nodes, which are priced with their node groups and pools", "helm_release")
free("no charge of its own", "terraform_data", "null_resource", "time_sleep", "random_id")
