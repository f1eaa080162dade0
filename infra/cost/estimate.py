"""Cost per environment, offline, from the synthesized JSON (or a real plan JSON).

Every resource ends up *priced*, *free*, *usage-based* (its usage is not in the environment file:
the report shows the unit price) or *unsupported* (a type we have no pricer for, or a size the
catalog has no price for): never a silent $0. Fixed costs are hours × 730; usage costs come from
the environment file's ``usage`` section.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from environments.loader import ENV_DIR, Environments, loaded
from environments.schema import Environment
from infra.cost.catalog import Catalog, MissingPrice, load_catalog
from infra.cost.model import CostItem, CostReport, EnvCost, ResourceCost, Status
from infra.cost.pricing import Ctx, cloud_of, registry
from infra.errors import InfraError
from infra.synthesized.reader import Resource, Stack, provider_regions, stacks_by_env

# resource types whose usage figure is shared evenly by all of them in a stack
SHARED = (
    "aws_nat_gateway",
    "aws_lambda_function",
    "aws_cloudwatch_log_group",
    "aws_budgets_budget",
    "google_compute_router_nat",
    "google_cloudbuild_trigger",
    "google_container_cluster",
    "aws_kms_key",
    "google_kms_crypto_key",
)


_EMPTY: dict[str, Any] = {}


def _status(items: list[CostItem]) -> Status:
    unknown = False
    for i in items:
        if i.quantity is None:
            unknown = True
        elif i.quantity * i.unit_price > 0:
            return "priced"
    return "usage" if unknown else "free"


def price_stack(stack: Stack, env: Environment | None, catalog: Catalog, today: dt.date | None = None) -> list[ResourceCost]:
    pricers, free = registry()
    raw: dict[str, dict[str, dict[str, Any]]] = stack.raw.get("resource", {})
    counts = {t: len(raw.get(t, {})) for t in SHARED}
    day = today or dt.date.today()
    ctx = Ctx(stack=stack, env=env, catalog=catalog, regions=provider_regions(stack), counts=counts, today=day)
    priced = []
    for rtype, by_name in raw.items():
        cloud = cloud_of(rtype)
        fn = pricers.get(rtype)
        if fn is None:  # the hot path of a big stack: no Resource objects, one shared reason
            status: Status = "free" if rtype in free else "unsupported"
            reason = free.get(rtype, "no pricer for this resource type")
            for name, values in by_name.items():
                address = f"{rtype}.{name}"
                path = values.get("//", _EMPTY).get("metadata", _EMPTY).get("path", address)
                priced.append(ResourceCost(stack.name, address, path, rtype, cloud, status, [], reason))
            continue
        for name, values in by_name.items():
            r = Resource(rtype, name, values)
            try:
                items = fn(r, ctx)
            except MissingPrice as exc:
                priced.append(ResourceCost(stack.name, r.address, r.path, rtype, cloud, "unsupported", [], str(exc)))
                continue
            items = [replace(i, stale=True) if i.stale_after is not None and day > i.stale_after else i for i in items]
            status = _status(items)
            reason = (
                "" if status != "free" else "; ".join(i.note for i in items if i.note) or free.get(rtype, "nothing billable as configured")
            )
            priced.append(ResourceCost(stack.name, r.address, r.path, rtype, cloud, status, items, reason))
    return priced


def estimate(
    outdir: Path,
    environments: Environments | Path = ENV_DIR,
    names: Iterable[str] | None = None,
    *,
    catalog: Catalog | None = None,
    plans: dict[str, Path] | None = None,
    today: dt.date | None = None,
) -> CostReport:
    """The cost report of the named environments (default: all) from ``outdir``; an environment
    named in ``plans`` is priced from that ``terraform show -json`` plan instead. A price older than
    its max age on ``today`` (default: the real today) marks the items it prices stale."""
    today = today or dt.date.today()
    catalog = catalog or load_catalog()
    envs = loaded(environments)
    wanted = list(names) if names else list(envs)
    unknown = [n for n in wanted if n not in envs]
    if unknown:
        raise InfraError(f"no environment named {', '.join(unknown)}; one of {', '.join(envs)}")
    plans = plans or {}
    for name in plans:
        if name not in wanted:
            raise InfraError(f"--plan {name}=…: {name!r} is not one of the environments being priced ({', '.join(wanted)})")
    by_env = stacks_by_env(outdir, [n for n in wanted if n not in plans]) if set(wanted) - set(plans) else {}
    result = []
    for name in wanted:
        env = envs[name]
        stacks = [stack_from_plan(plans[name], name)] if name in plans else by_env[name]
        resources = [rc for s in stacks for rc in price_stack(s, env, catalog, today)]
        result.append(EnvCost(name, [s.name for s in stacks], resources, budget_scopes(env), env.budget.max_increase_pct))
    ages = {k: (a.days, a.reason) for k, a in catalog.max_age.items()}
    return CostReport(result, str(catalog.path), catalog.hours_per_month, "plan" if plans else "synth", today, ages)


def budget_scopes(env: Environment) -> dict[str, float]:
    scopes = {"total": env.budget.monthly_usd}
    for cloud in ("aws", "gcp"):
        if getattr(env, cloud) is not None:
            scopes[cloud] = env.budget_usd(cloud)
    if env.budget.ceiling_usd is not None:
        scopes["ceiling"] = env.budget.ceiling_usd
    return scopes


def stack_from_plan(path: Path, env: str) -> Stack:
    """A :class:`Stack` made of a plan's planned values (root and child modules) and provider config."""
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InfraError(f"{path}: plan file not found") from None
    except json.JSONDecodeError as exc:
        raise InfraError(f"{path}: not JSON ({exc}); give the output of `terraform show -json PLANFILE`") from None
    if not isinstance(plan, dict) or "planned_values" not in plan:
        raise InfraError(f"{path}: no planned_values; give the output of `terraform show -json PLANFILE`")
    resources: dict[str, dict[str, Any]] = {}

    def walk(module: dict[str, Any]) -> None:
        for r in module.get("resources", []):
            if r.get("mode", "managed") == "managed":
                name = r["address"].split(".", 1)[1] if r["address"].startswith(r["type"] + ".") else r["address"]
                resources.setdefault(r["type"], {})[name] = r.get("values") or {}
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan["planned_values"].get("root_module", {}))
    providers: dict[str, list[dict[str, Any]]] = {}
    for key, cfg in (plan.get("configuration", {}).get("provider_config") or {}).items():
        region = (cfg.get("expressions", {}).get("region") or {}).get("constant_value")
        if region:
            providers.setdefault(cfg.get("name", key), []).append({"region": region})
    return Stack(env, path, {"resource": resources, "provider": providers})
