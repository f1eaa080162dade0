"""What an estimate is made of: cost items per resource, resources per environment, scenarios."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

# "configured" is the bill as the environment files say: spot where they ask for it, on-demand
# elsewhere. The others re-price the same compute hours: all on-demand, or with 1- and 3-year
# commitments on the committed baseline (each pool's floor and always-on nodes; burst hours above
# the floor stay on-demand, spot stays spot).
SCENARIOS = ("configured", "on-demand", "commit-1y", "commit-3y")
Scenario = Literal["configured", "on-demand", "commit-1y", "commit-3y"]
Kind = Literal["fixed", "usage"]
Status = Literal["priced", "usage", "free", "unsupported"]
STATUS_LABEL = {
    "priced": "priced",
    "usage": "usage-based, usage not given",
    "free": "free",
    "unsupported": "unsupported",
}


@dataclass(frozen=True)
class CostItem:
    """One line of a resource's bill: ``quantity`` units a month at ``unit_price``.

    ``quantity`` is None when it depends on usage the environment file does not give: the item
    then shows its unit price and adds nothing to the totals. ``rates`` holds the unit price per
    scenario when it differs from ``unit_price`` (compute hours)."""

    name: str
    kind: Kind
    quantity: float | None
    unit: str
    unit_price: float
    source: str
    confirmed: bool = True
    note: str = ""
    rates: dict[str, float] | None = None
    key: str = ""  # stable identity for diffs when ``name`` carries figures (``node-hours:floor``)
    gpu: str = ""  # node-hour items of GPU machines: the GPU model (``nvidia-l4``)
    gpus: int = 0  # and how many per node
    read: dt.date | None = None  # the oldest date of the prices it uses (as_of, else read)
    stale_after: dt.date | None = None  # the first of those prices' max-age ends
    stale: bool = False  # priced with a figure older than its max age on the report's day
    ceiling: float | None = None  # monthly, as configured, with every pool at its maximum (None: as monthly())

    @property
    def ident(self) -> str:
        return self.key or self.name

    def rate(self, scenario: str = "configured") -> float:
        return self.rates.get(scenario, self.unit_price) if self.rates else self.unit_price

    def monthly(self, scenario: str = "configured") -> float | None:
        return None if self.quantity is None else self.quantity * self.rate(scenario)

    def ceiling_monthly(self) -> float:
        """This item's share of the ceiling: every pool at its maximum all month; other items as expected."""
        if self.ceiling is not None:
            return self.ceiling
        return self.monthly() or 0.0

    def price_text(self) -> str:
        """``$0.20 per 1M requests``: what a reader needs when the quantity is unknown."""
        return f"${_num(self.unit_price)} per {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.name,
            "kind": self.kind,
            "quantity": self.quantity,
            "unit": self.unit,
            "unit_price": self.unit_price,
            "monthly": {s: _round(self.monthly(s)) for s in SCENARIOS},
            "source": self.source,
            "confirmed": self.confirmed,
            "oldest_price_date": self.read.isoformat() if self.read else None,
            "stale": self.stale,
            "ceiling": _round(self.ceiling_monthly()),
            "note": self.note,
            **({"gpu": self.gpu, "gpus_per_unit": self.gpus} if self.gpus else {}),
        }


@dataclass(slots=True)
class ResourceCost:
    stack: str
    address: str
    path: str
    type: str
    cloud: str  # aws | gcp | kubernetes | other
    status: Status
    items: list[CostItem] = field(default_factory=list)
    reason: str = ""  # why free, or why unsupported

    def monthly(self, scenario: str = "configured") -> float:
        return sum(m for i in self.items if (m := i.monthly(scenario)) is not None)

    def ceiling(self) -> float:
        return sum(i.ceiling_monthly() for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "address": self.address,
            "path": self.path,
            "type": self.type,
            "cloud": self.cloud,
            "status": self.status,
            "reason": self.reason,
            "monthly": {s: _round(self.monthly(s)) for s in SCENARIOS},
            "ceiling": _round(self.ceiling()),
            "items": [i.to_dict() for i in self.items],
        }


@dataclass
class EnvCost:
    env: str
    stacks: list[str]
    resources: list[ResourceCost]
    budget_usd: dict[str, float]  # per cloud, "total", and "ceiling" (budget.ceiling_usd) when given
    max_increase_pct: float | None = None  # budget.max_increase_pct: what `infra cost diff` allows

    def total(self, scenario: str = "configured", cloud: str | None = None) -> float:
        return sum(r.monthly(scenario) for r in self.resources if cloud is None or r.cloud == cloud)

    def ceiling(self, cloud: str | None = None) -> float:
        """The monthly cost with every node group and pool at its maximum all month (as configured)."""
        return sum(r.ceiling() for r in self.resources if cloud is None or r.cloud == cloud)

    def scope_total(self, scope: str) -> float:
        """What a budget scope caps: the estimate (``total``, a cloud) or the ceiling (``ceiling``)."""
        if scope == "ceiling":
            return self.ceiling()
        return self.total() if scope == "total" else self.total(cloud=scope)

    def stale_items(self) -> list[tuple[ResourceCost, CostItem]]:
        return [(r, i) for r in self.resources for i in r.items if i.stale]

    @property
    def clouds(self) -> list[str]:
        return sorted({r.cloud for r in self.resources if r.cloud in ("aws", "gcp")})

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUS_LABEL, 0)
        for r in self.resources:
            counts[r.status] += 1
        return counts

    def over_budget(self) -> list[tuple[str, float, float]]:
        """(scope, estimate, budget) for each cloud share and the total the estimate crosses."""
        over = []
        for scope, budget in self.budget_usd.items():
            estimate = self.scope_total(scope)
            if estimate > budget + 0.005:
                over.append((scope, estimate, budget))
        return over

    def unconfirmed_usd(self) -> float:
        return sum(m for r in self.resources for i in r.items if not i.confirmed and (m := i.monthly()) is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "stacks": self.stacks,
            "monthly": {s: _round(self.total(s)) for s in SCENARIOS},
            "ceiling": _round(self.ceiling()),
            "by_cloud": {c: {s: _round(self.total(s, c)) for s in SCENARIOS} | {"ceiling": _round(self.ceiling(c))} for c in self.clouds},
            "budget_usd": self.budget_usd,
            "over_budget": [{"scope": s, "estimate": _round(e), "budget": b} for s, e, b in self.over_budget()],
            "counts": self.counts(),
            "unconfirmed_usd": _round(self.unconfirmed_usd()),
            "stale_items": len(self.stale_items()),
            "resources": [r.to_dict() for r in self.resources],
        }


@dataclass
class CostReport:
    envs: list[EnvCost]
    catalog: str
    hours_per_month: float
    source: str = "synth"  # or "plan" when a plan JSON priced an environment
    today: dt.date = field(default_factory=dt.date.today)  # the day staleness is judged on
    max_age: dict[str, tuple[int, str]] = field(default_factory=dict)  # key prefix -> (days, reason)

    def total(self, scenario: str = "configured") -> float:
        return sum(e.total(scenario) for e in self.envs)

    def ceiling(self) -> float:
        return sum(e.ceiling() for e in self.envs)

    @property
    def over_budget(self) -> list[tuple[str, str, float, float]]:
        return [(e.env, scope, est, budget) for e in self.envs for scope, est, budget in e.over_budget()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "hours_per_month": self.hours_per_month,
            "scenarios": list(SCENARIOS),
            "today": self.today.isoformat(),
            "max_age_days": {k: days for k, (days, _) in self.max_age.items()},
            "monthly": {s: _round(self.total(s)) for s in SCENARIOS},
            "ceiling": _round(self.ceiling()),
            "environments": [e.to_dict() for e in self.envs],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _num(value: float) -> str:
    """A unit price as people write it: 0.10, 0.0014, 0.0000166667."""
    if value >= 1:
        return f"{value:,.2f}" if value == round(value, 2) else f"{value:,.4f}"
    text = f"{value:.10f}".rstrip("0")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return f"{value:.{max(2, decimals)}f}"
