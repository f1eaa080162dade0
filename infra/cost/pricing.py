"""The pricer registry and what a pricer gets to work with.

A pricer turns one resource into cost items; it is registered for its resource types with
:func:`pricer`. Types that cost nothing by themselves are registered with :func:`free` and a
reason. Any other type is reported *unsupported*: never a silent $0. The cloud modules
(:mod:`infra.cost.aws`, :mod:`infra.cost.gcp`) register themselves when first imported, which
:func:`registry` does lazily.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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


def item(
    name: str,
    quantity: float | None,
    price: Price,
    *,
    kind: str = "fixed",
    note: str = "",
    rates: dict[str, float] | None = None,
    key: str = "",
) -> CostItem:
    notes = f"{note}; {price.note}" if note and price.note else note or price.note
    return CostItem(
        name=name,
        kind="usage" if kind == "usage" else "fixed",
        quantity=quantity,
        unit=price.unit,
        unit_price=price.value,
        source=price.source,
        confirmed=price.confirmed,
        note=notes,
        rates=rates,
        key=key,
    )


def stored_gb_unknown(cloud: str, key: str, r: Resource, ctx: Ctx) -> list[CostItem]:
    """A bucket: storage is usage the environment file does not give, so the unit price shows."""
    return [item("standard storage", None, ctx.price(cloud, key, r), kind="usage", note="stored GB: not in the environment file")]


def compute_rates(
    ctx: Ctx, cloud: str, family: str, on_demand: Price, spot: bool, resource: Resource
) -> tuple[float, dict[str, float], bool]:
    """(configured unit price, unit price per scenario, all factors confirmed) of compute hours."""
    od = on_demand.value
    region = ctx.region(cloud, resource)
    factors = {s: ctx.catalog.get(cloud, region, f"{s}/{family}") for s in ("spot", "commit-1y", "commit-3y")}
    spot_rate = od * factors["spot"].value
    committed = {s: (spot_rate if spot else od * factors[s].value) for s in ("commit-1y", "commit-3y")}
    configured = spot_rate if spot else od
    confirmed = on_demand.confirmed and all(f.confirmed for f in factors.values())
    return configured, {"configured": configured, "on-demand": od, **committed}, confirmed


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
) -> CostItem:
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
    )


def node_hour_items(
    ctx: Ctx,
    resource: Resource,
    *,
    label: str,
    floor_nodes: float,
    gpu_key: str | None,
    unit_rate: float,
    rates: dict[str, float],
    on_demand: Price,
    confirmed: bool,
    gpu: tuple[str, int] | None = None,
) -> tuple[list[CostItem], float]:
    """Node-hours of a node group: the floor (always-on nodes × 730) is fixed; a GPU pool's hours
    above it come from ``usage.gpu_node_hours`` or are shown as a unit price. Returns the items
    and the node-hours known."""
    floor_hours = floor_nodes * ctx.hours
    items = []
    if floor_hours:
        items.append(
            hours_item(
                f"{label}: {floor_nodes:g} always-on × {ctx.hours:g} h",
                floor_hours,
                unit_rate,
                rates,
                on_demand,
                confirmed,
                kind="fixed",
                key="node-hours:floor",
                gpu=gpu,
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
        if declared is None or above:
            items.append(
                hours_item(
                    f"{label}: node-hours above the floor",
                    above,
                    unit_rate,
                    rates,
                    on_demand,
                    confirmed,
                    kind="usage",
                    note=note,
                    key="node-hours:above",
                    gpu=gpu,
                )
            )
        known += above or 0.0
    return items, known


free("runs on the cluster's nodes, which are priced with their node groups and pools", "helm_release")
free("no charge of its own", "terraform_data", "null_resource", "time_sleep", "random_id")
