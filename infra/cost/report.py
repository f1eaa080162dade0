"""Cost reports for people (rich tables, Markdown within GitHub's comment limit) and machines (JSON)."""

from __future__ import annotations

import json

from infra.cost.model import SCENARIOS, STATUS_LABEL, CostItem, CostReport, EnvCost, ResourceCost
from infra.markdown import MARKDOWN_LIMIT, md_cell, rel_path
from infra.tables import Table, styled

SCENARIO_LABEL = {
    "configured": "as configured (spot where configured)",
    "on-demand": "all on-demand",
    "commit-1y": "1-year commitment",
    "commit-3y": "3-year commitment",
}


def usd(value: float | None, *, sign: bool = False) -> str:
    if value is None:
        return "–"
    text = f"${abs(value):,.2f}"
    if sign:
        return ("+" if value >= 0 else "−") + text
    return text if value >= 0 else "−" + text


def qty(i: CostItem) -> str:
    if i.quantity is None:
        return "usage not given"
    return f"{i.quantity:,.4g} {i.unit}"


def monthlymd_cell(i: CostItem) -> str:
    """The monthly figure, or the unit price when usage is missing: never a bare $0."""
    m = i.monthly()
    return f"{i.price_text()}" if m is None else usd(m)


def flag(i: CostItem) -> str:
    """Why a reader should doubt an item's unit price: unconfirmed, or stale (older than its max age)."""
    flags = []
    if not i.confirmed:
        flags.append("unconfirmed price")
    if i.stale:
        flags.append(f"stale price (from {i.read.isoformat() if i.read else '?'})")
    return ", ".join(flags)


def marks(i: CostItem) -> str:
    return ("" if i.confirmed else " ⚠") + (" ⏳" if i.stale else "")


def ages_text(report: CostReport) -> str:
    """``90 days, spot 30``: how old a price may be before it is marked stale."""
    default = report.max_age.get("default", (90, ""))[0]
    others = "".join(f", {k} {d}" for k, (d, _) in report.max_age.items() if k != "default")
    return f"{default} days{others}"


def stale_text(report: CostReport) -> str:
    """One line on the stale prices of the report, or "" when there are none."""
    stale = [(e, r, i) for e in report.envs for r, i in e.stale_items()]
    if not stale:
        return ""
    oldest = min(i.read for _, _, i in stale if i.read is not None)
    return (
        f"⏳ {len(stale)} cost item(s) use a price older than its maximum age on {report.today.isoformat()} "
        f"({ages_text(report)}; the oldest from {oldest.isoformat()}): run `infra cost refresh` where credentials are, see docs/cost.md."
    )


def _rows(env: EnvCost) -> list[tuple[ResourceCost, CostItem]]:
    return [(r, i) for r in env.resources if r.status in ("priced", "usage") for i in r.items]


def _counts_text(env: EnvCost) -> str:
    c = env.counts()
    return ", ".join(f"{c[k]} {STATUS_LABEL[k]}" for k in STATUS_LABEL)


def budget_text(env: EnvCost) -> str:
    over = {scope for scope, _, _ in env.over_budget()}
    parts = []
    for scope, budget in env.budget_usd.items():
        estimate = env.scope_total(scope)
        mark = "OVER" if scope in over else f"{estimate / budget:.0%}"
        parts.append(f"{scope} {usd(budget)} ({mark})")
    return ", ".join(parts)


def tables(report: CostReport) -> list[Table]:
    out = []
    for env in report.envs:
        t = Table(
            "resource",
            "cost item",
            "quantity / month",
            "unit price",
            "monthly",
            "",
            title=f"{env.env}: monthly estimate",
            title_justify="left",
        )
        for r, i in _rows(env):
            t.add_row(r.path, i.name, qty(i), i.price_text(), monthlymd_cell(i), flag(i))
        for cloud in env.clouds:
            t.add_row("", styled(f"{cloud} total", "bold"), "", "", styled(usd(env.total(cloud=cloud)), "bold"), "")
        t.add_row("", styled(f"{env.env} total", "bold"), "", "", styled(usd(env.total()), "bold"), "")
        t.add_row("", f"ceiling: every pool at its maximum, {report.hours_per_month:g} h", "", "", usd(env.ceiling()), "")
        stale = len(env.stale_items())
        stale_note = f" {stale} item(s) priced with a stale price (older than {ages_text(report)})." if stale else ""
        t.caption = f"{_counts_text(env)}. Budget: {budget_text(env)}.{stale_note}"
        out.append(t)
        unsupported = [r for r in env.resources if r.status == "unsupported"]
        if unsupported:
            u = Table("resource", "type", "why", title=f"{env.env}: not priced", title_justify="left")
            for r in unsupported:
                u.add_row(r.path, r.type, r.reason)
            out.append(u)
    out.append(summary_table(report))
    return out


def summary_table(report: CostReport) -> Table:
    t = Table(
        "environment",
        "cloud",
        *[SCENARIO_LABEL[s] for s in SCENARIOS],
        "ceiling (pools at max)",
        "budget",
        title="monthly estimate by scenario",
        title_justify="left",
    )
    for env in report.envs:
        for cloud in env.clouds:
            t.add_row(
                env.env, cloud, *[usd(env.total(s, cloud)) for s in SCENARIOS], usd(env.ceiling(cloud)), usd(env.budget_usd.get(cloud))
            )
        budget = usd(env.budget_usd["total"]) + (f", ceiling {usd(env.budget_usd['ceiling'])}" if "ceiling" in env.budget_usd else "")
        t.add_row(
            styled(env.env, "bold"),
            "all",
            *[styled(usd(env.total(s)), "bold") for s in SCENARIOS],
            styled(usd(env.ceiling()), "bold"),
            budget,
        )
    t.add_row(styled("platform", "bold"), "all", *[styled(usd(report.total(s)), "bold") for s in SCENARIOS], usd(report.ceiling()), "")
    return t


def markdown(report: CostReport, *, limit: int = MARKDOWN_LIMIT) -> str:
    over = report.over_budget
    head = "### ❌ Cost: over budget" if over else "### 💵 Cost estimate"
    lines = [
        head,
        "",
        f"Monthly, from the synthesized stacks and each environment file's `usage` (prices: `{rel_path(report.catalog)}`, a month = {report.hours_per_month:g} h).",
        "",
        "| environment | " + " | ".join(SCENARIO_LABEL[s] for s in SCENARIOS) + " | ceiling (pools at max) | budget | resources |",
        "|---|" + "---:|" * len(SCENARIOS) + "---:|---|---|",
    ]
    for env in report.envs:
        lines.append(
            f"| {env.env} | "
            + " | ".join(usd(env.total(s)) for s in SCENARIOS)
            + f" | {usd(env.ceiling())} | {budget_text(env)} | {_counts_text(env)} |"
        )
    lines.append("| **platform** | " + " | ".join(f"**{usd(report.total(s))}**" for s in SCENARIOS) + f" | {usd(report.ceiling())} | | |")
    for env_name, scope, est, budget in over:
        what = "with every pool at its maximum" if scope == "ceiling" else "estimated"
        lines.append(f"\n**{env_name}** is over its {scope} budget: {usd(est)} {what} against {usd(budget)}.")
    lines.append(
        f"\nThe ceiling is the month with every node group and pool at its maximum all {report.hours_per_month:g} h, other items as expected."
    )
    stale = stale_text(report)
    if stale:
        lines.append(f"\n{stale}")
    text = "\n".join(lines) + "\n"
    left_out = 0
    for env in report.envs:
        section = [
            f"\n<details><summary>{env.env}: {usd(env.total())}/month</summary>\n",
            "| resource | cost item | quantity | unit price | monthly |",
            "|---|---|---:|---:|---:|",
        ]
        for r, i in _rows(env):
            section.append(f"| `{md_cell(r.path)}` | {md_cell(i.name)} | {qty(i)} | {i.price_text()}{marks(i)} | {monthlymd_cell(i)} |")
        for r in env.resources:
            if r.status == "unsupported":
                section.append(f"| `{md_cell(r.path)}` | **not priced**: {md_cell(r.reason)} | | | |")
        section.append("\n</details>\n")
        chunk = "\n".join(section)
        if len(text) + len(chunk) + 300 > limit:
            left_out += 1
            continue
        text += chunk
    if left_out:
        text += f"\n{left_out} environment detail section(s) left out to stay under {limit:,} characters; `infra cost --format json` has them all.\n"
    text += (
        "\n⚠ marks a unit price the catalog could not confirm on the provider's page or API; "
        f"⏳ one older than its maximum age ({ages_text(report)}); see docs/cost.md.\n"
    )
    return text


def to_json(report: CostReport) -> str:
    return json.dumps(report.to_dict(), indent=2)
