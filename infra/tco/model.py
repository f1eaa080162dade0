"""5-year total cost of ownership: the environments in the cloud (on-demand, as configured,
committed) against buying on-prem GPU servers with the same GPU capacity.

Model (every input in ``tco.yaml``, overridable with ``--set``):
- month m = 1..N; growth g a year; growth factor f(m) = (1 + g)^((m - 1) / 12).
- cloud cost of a scenario in month m = fixed + (GPU compute + usage) × f(m); fixed items
  (control planes, gateways, system nodes) do not grow.
- on-prem: the GPU compute moves to owned servers, everything else stays in the cloud (as
  configured). GPUs owned = ceil(average GPUs in use × f(m) / utilization), per GPU model; servers
  are bought when needed and bought again after the depreciation period (cash view). Monthly
  running cost: power_kw × PUE × 730 h × electricity and maintenance per server; colocation for the
  fleet's footprint, its kW rounded up to whole cabinets; staff for the fleet.
- servers are bought whole, for the whole platform: only the platform projection owns servers. An
  environment's own on-prem figure would either buy a whole server for a fraction of a GPU or
  price a fraction of a server nobody sells; the environments' projections are their cloud cost.
- break-even month: the first month from which the cumulative on-prem cost stays at or below the
  cloud scenario's cumulative cost.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.cost.model import SCENARIOS, CostReport, EnvCost
from infra.errors import InfraError

TCO_FILE = Path(__file__).with_name("tco.yaml")
CLOUD_SCENARIOS = ("on-demand", "configured", "commit-1y", "commit-3y")


class AssumptionError(InfraError):
    """A bad assumption file or --set override (names the key)."""


@dataclass
class Assumptions:
    values: dict[str, float]
    servers: dict[str, dict[str, Any]]
    aliases: dict[str, str]
    sources: dict[str, str]
    overridden: set[str] = field(default_factory=set)

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def server(self, gpu: str) -> dict[str, Any]:
        name = self.aliases.get(gpu, gpu)
        if name not in self.servers:
            raise AssumptionError(
                f"{TCO_FILE}: servers: no on-prem server for GPU {gpu!r}; add servers.{name} (gpus, price_usd, power_kw, source)"
            )
        return self.servers[name]


@functools.cache
def _raw(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _provenance(where: str, entry: dict[str, Any]) -> str:
    """``source (read date[, unconfirmed])``, or ``assumption: reason (read date)``; an entry gives
    one or the other, never neither."""
    if "read" not in entry:
        raise AssumptionError(f"{where}.read: missing; every figure says when it was read")
    if entry.get("assumption") is True:
        reason = str(entry.get("reason") or "")
        if len(reason) < 15:
            raise AssumptionError(f"{where}.reason: an assumption says why it is what it is (at least 15 characters)")
        if "source" in entry:
            raise AssumptionError(f"{where}: give a source or mark it `assumption: true` with a reason, not both")
        return f"assumption: {reason} (read {entry['read']})"
    source = str(entry.get("source") or "")
    if not source or source.lower().startswith("assumption"):
        raise AssumptionError(f"{where}.source: missing; cite a source, or mark it `assumption: true` with a reason")
    flag = "" if entry.get("confirmed", True) else ", unconfirmed"
    return f"{source} (read {entry['read']}{flag})"


def load_assumptions(overrides: list[str] | None = None, path: Path = TCO_FILE) -> Assumptions:
    raw = _raw(path)
    values, sources = {}, {}
    for key, entry in raw["assumptions"].items():
        if "value" not in entry:
            raise AssumptionError(f"{path}: assumptions.{key}.value: missing")
        values[key] = float(entry["value"])
        sources[key] = _provenance(f"{path}: assumptions.{key}", entry)
    servers = {name: dict(spec) for name, spec in raw["servers"].items()}
    for name, spec in servers.items():
        for field_name in ("gpus", "price_usd", "power_kw"):
            if field_name not in spec:
                raise AssumptionError(f"{path}: servers.{name}.{field_name}: missing")
        sources[f"servers.{name}"] = _provenance(f"{path}: servers.{name}", spec)
    result = Assumptions(values, servers, dict(raw.get("aliases") or {}), sources)
    for text in overrides or []:
        _override(result, text)
    if result["utilization"] <= 0 or result["utilization"] > 1:
        raise AssumptionError(f"utilization: {result['utilization']:g} is not in (0, 1]")
    if result["horizon_years"] < 1 or result["depreciation_years"] <= 0:
        raise AssumptionError("horizon_years must be at least 1 and depreciation_years above 0")
    if result["colocation_cabinet_kw"] <= 0:
        raise AssumptionError(f"colocation_cabinet_kw: {result['colocation_cabinet_kw']:g} kW; a cabinet holds some power, e.g. 10")
    return result


def _override(a: Assumptions, spec: str) -> None:
    key, sep, text = spec.partition("=")
    if not sep:
        raise AssumptionError(f"--set {spec!r}: write KEY=VALUE, e.g. --set pue=1.3")
    try:
        value = float(text)
    except ValueError:
        raise AssumptionError(f"--set {key}: {text!r} is not a number") from None
    if value < 0:
        raise AssumptionError(f"--set {key}: {value:g} is negative")
    parts = key.split(".")
    if len(parts) == 1 and key in a.values:
        a.values[key] = value
    elif len(parts) == 3 and parts[0] == "servers" and parts[1] in a.servers and parts[2] in ("gpus", "price_usd", "power_kw"):
        a.servers[parts[1]][parts[2]] = value
    else:
        known = sorted(a.values) + [f"servers.{s}.{f}" for s in a.servers for f in ("gpus", "price_usd", "power_kw")]
        raise AssumptionError(f"--set {key}: unknown assumption; one of {', '.join(known)}")
    a.overridden.add(key)


@dataclass
class Split:
    """One environment's monthly cost on one cloud, by scenario: what grows and what does not."""

    fixed: dict[str, float]
    growing: dict[str, float]  # GPU compute + usage
    gpu_compute: dict[str, float]
    gpu_hours: dict[str, float]  # GPU model -> GPU-hours a month

    def month(self, scenario: str, factor: float) -> float:
        return self.fixed[scenario] + self.growing[scenario] * factor


def split(env: EnvCost, cloud: str | None = None) -> Split:
    fixed = dict.fromkeys(SCENARIOS, 0.0)
    growing = dict.fromkeys(SCENARIOS, 0.0)
    gpu = dict.fromkeys(SCENARIOS, 0.0)
    gpu_hours: dict[str, float] = {}
    for r in env.resources:
        if cloud is not None and r.cloud != cloud:
            continue
        for i in r.items:
            if i.quantity is None:
                continue
            for s in SCENARIOS:
                m = i.monthly(s) or 0.0
                if i.gpus:
                    gpu[s] += m
                    growing[s] += m
                elif i.kind == "usage":
                    growing[s] += m
                else:
                    fixed[s] += m
            if i.gpus:
                gpu_hours[i.gpu] = gpu_hours.get(i.gpu, 0.0) + i.quantity * i.gpus
    return Split(fixed, growing, gpu, gpu_hours)


@dataclass
class Projection:
    scope: str  # an environment, or "platform"
    months: int
    cloud: dict[str, list[float]]  # scenario -> monthly cost
    onprem: list[float]  # monthly cash cost (purchases in the month they happen)
    onprem_amortized: list[float]
    servers: list[dict[str, int]]  # per month: GPU model -> servers owned
    gpus_in_use: dict[str, float]  # month 1 average, per model
    cabinets: list[int] = field(default_factory=list)  # per month: colocation cabinets rented

    @property
    def owns(self) -> bool:
        """Whether this projection buys servers (the platform) or is cloud only (an environment)."""
        return bool(self.onprem)

    def cumulative(self, series: list[float]) -> list[float]:
        return list(itertools.accumulate(series))

    def total(self, scenario: str) -> float:
        return sum(self.onprem if scenario == "on-prem" else self.cloud[scenario])

    def break_even(self, scenario: str = "configured") -> int | None:
        """First month from which on-prem's cumulative cost stays at or below the scenario's."""
        if not self.gpus_in_use or not self.owns:
            return None
        cloud = self.cumulative(self.cloud[scenario])
        onprem = self.cumulative(self.onprem)
        behind = [m for m in range(self.months) if onprem[m] > cloud[m] + 1e-6]
        if not behind:
            return 1
        last = behind[-1] + 1  # the last month on-prem is still behind (1-based)
        return last + 1 if last < self.months else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "months": self.months,
            "owns_servers": self.owns,
            "totals": {
                **{s: round(self.total(s), 2) for s in CLOUD_SCENARIOS},
                "on-prem": round(self.total("on-prem"), 2) if self.owns else None,
            },
            "break_even_month": {s: self.break_even(s) for s in CLOUD_SCENARIOS},
            "gpus_in_use_month_1": self.gpus_in_use,
            "servers_final": self.servers[-1] if self.servers else {},
            "cabinets_final": self.cabinets[-1] if self.cabinets else 0,
            "monthly": {
                **{s: [round(v, 2) for v in self.cloud[s]] for s in CLOUD_SCENARIOS},
                **({"on-prem": [round(v, 2) for v in self.onprem]} if self.owns else {}),
            },
        }


def project(scope: str, splits: list[Split], a: Assumptions, hours_per_month: float, *, owned: bool = True) -> Projection:
    """The cloud scenarios of ``splits`` month by month, and (``owned``) the on-prem fleet that
    would replace their GPU compute."""
    months = int(a["horizon_years"] * 12)
    growth = a["growth_pct_per_year"] / 100
    factors = [(1 + growth) ** (m / 12) for m in range(months)]
    cloud = {s: [sum(sp.month(s, f) for sp in splits) for f in factors] for s in CLOUD_SCENARIOS}
    gpu_hours: dict[str, float] = {}
    for sp in splits:
        for model, hours in sp.gpu_hours.items():
            gpu_hours[model] = gpu_hours.get(model, 0.0) + hours
    in_use = {model: hours / hours_per_month for model, hours in gpu_hours.items() if hours > 0}
    if not owned:
        return Projection(scope, months, cloud, [], [], [], in_use)
    stays_in_cloud = [sum(sp.month("configured", f) - sp.gpu_compute["configured"] * f for sp in splits) for f in factors]
    dep_months = max(1, round(a["depreciation_years"] * 12))
    owned_at: dict[str, list[int]] = {model: [] for model in in_use}  # purchase month of each server
    onprem, amortized, servers, cabinets = [], [], [], []
    for m, f in enumerate(factors):
        cash = stays_in_cloud[m]
        spread = stays_in_cloud[m]
        count: dict[str, int] = {}
        kw = 0.0
        for model, gpus in in_use.items():
            spec = a.server(model)
            need = math.ceil(math.ceil(gpus * f / a["utilization"] - 1e-9) / spec["gpus"])
            fleet = [bought for bought in owned_at[model] if m - bought < dep_months]  # retired servers are bought again
            while len(fleet) < need:
                fleet.append(m)
                cash += spec["price_usd"]
            owned_at[model] = fleet
            n = len(fleet)
            count[model] = n
            kw += n * spec["power_kw"]
            running = n * spec["power_kw"] * a["pue"] * hours_per_month * a["electricity_usd_per_kwh"]
            running += n * spec["price_usd"] * a["maintenance_pct_per_year"] / 100 / 12
            cash += running
            spread += running + n * spec["price_usd"] / dep_months
        # colocation is rented in whole cabinets: the fleet's kW rounded up
        racks = math.ceil(kw / a["colocation_cabinet_kw"] - 1e-9) if kw > 0 else 0
        colocation = racks * a["colocation_cabinet_kw"] * a["colocation_usd_per_kw_month"]
        cash += colocation
        spread += colocation
        fleet_size = sum(count.values())
        if fleet_size:
            staff = max(a["staff_fte_min"], a["staff_fte_per_server"] * fleet_size) * a["staff_usd_per_fte_year"] / 12
            cash += staff
            spread += staff
        onprem.append(cash)
        amortized.append(spread)
        servers.append(count)
        cabinets.append(racks)
    return Projection(scope, months, cloud, onprem, amortized, servers, in_use, cabinets)


@dataclass
class TcoReport:
    assumptions: Assumptions
    projections: list[Projection]  # each environment, then the platform
    by_env_cloud: dict[tuple[str, str], list[float]]  # (env, cloud) -> monthly, as configured
    hours_per_month: float

    @property
    def platform(self) -> Projection:
        return self.projections[-1]

    def verdict(self) -> str:
        """The platform's answer, in a sentence, and why it is the platform's."""
        p = self.platform
        years = p.months // 12
        why = (
            "On-prem servers are bought whole, for the whole platform: an environment's own row would buy a "
            "whole server for a fraction of a GPU, or price a fraction of a server nobody sells, so only the "
            "platform row owns servers; the environments' rows are their cloud cost."
        )
        if not p.gpus_in_use:
            return f"No GPUs in use: nothing to buy. {why}"
        parts = []
        for s, label in (("configured", "the cloud as configured"), ("commit-3y", "3-year commitments")):
            m = p.break_even(s)
            parts.append(f"pays off against {label} from month {m}" if m else f"does not pay off against {label} within {years} years")
        return (
            f"Owning {', '.join(f'{n} × {k}' for k, n in p.servers[-1].items())} servers "
            f"({p.cabinets[-1]} colocation cabinet(s) at the end) {parts[0]} and {parts[1]}: "
            f"{_usd0(p.total('on-prem'))} on-prem against {_usd0(p.total('configured'))} as configured over {years} years. {why}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "assumptions": {
                k: {"value": v, "source": self.assumptions.sources.get(k, ""), "overridden": k in self.assumptions.overridden}
                for k, v in self.assumptions.values.items()
            },
            "servers": self.assumptions.servers,
            "verdict": self.verdict(),
            "projections": [p.to_dict() for p in self.projections],
        }


def _usd0(v: float) -> str:
    return f"${v:,.0f}"


def build(report: CostReport, a: Assumptions) -> TcoReport:
    # environments: their cloud cost only; the platform buys the servers (see the module's docstring)
    projections = [project(e.env, [split(e)], a, report.hours_per_month, owned=False) for e in report.envs]
    projections.append(project("platform", [split(e) for e in report.envs], a, report.hours_per_month))
    months = int(a["horizon_years"] * 12)
    growth = a["growth_pct_per_year"] / 100
    by_env_cloud = {}
    for e in report.envs:
        for cloud in e.clouds:
            sp = split(e, cloud)
            by_env_cloud[(e.env, cloud)] = [sp.month("configured", (1 + growth) ** (m / 12)) for m in range(months)]
    return TcoReport(a, projections, by_env_cloud, report.hours_per_month)
