"""Cost diff between two snapshots (base and head), keyed by resource address and cost item.

The base is either an existing synth output (``--base-outdir``) or a git ref, synthesized by
:func:`infra.synth.synth_ref` in a temporary worktree (the user's checkout is never touched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.cost.model import CostReport, EnvCost
from infra.cost.report import usd
from infra.errors import InfraError
from infra.markdown import MARKDOWN_LIMIT, md_cell


@dataclass(frozen=True)
class ItemDelta:
    address: str
    path: str
    item: str
    base: float | None  # None: the item does not exist on that side
    head: float | None
    base_ceiling: float = 0.0  # the item's share of the ceiling (every pool at its maximum)
    head_ceiling: float = 0.0

    @property
    def delta(self) -> float:
        return (self.head or 0.0) - (self.base or 0.0)

    @property
    def ceiling_delta(self) -> float:
        return self.head_ceiling - self.base_ceiling

    @property
    def change(self) -> str:
        return "added" if self.base is None else "removed" if self.head is None else "changed"


@dataclass
class EnvDelta:
    env: str
    base: float | None  # None: a new environment
    head: float | None  # None: a removed environment
    max_increase_pct: float | None
    items: list[ItemDelta] = field(default_factory=list)
    over_budget: list[tuple[str, float, float]] = field(default_factory=list)  # scopes "total", a cloud, "ceiling"
    base_ceiling: float | None = None  # every pool at its maximum all month
    head_ceiling: float | None = None
    stale: int = 0  # head items priced with a price older than its max age

    @property
    def delta(self) -> float:
        return (self.head or 0.0) - (self.base or 0.0)

    @property
    def ceiling_delta(self) -> float:
        return (self.head_ceiling or 0.0) - (self.base_ceiling or 0.0)

    def change_text(self) -> str:
        """``+$0.00 expected, ceiling +$1,234.56``: what a change does to expected usage and to what it permits."""
        return f"{usd(self.delta, sign=True)} expected, ceiling {usd(self.ceiling_delta, sign=True)}"

    @property
    def pct(self) -> float | None:
        return None if not self.base else 100.0 * self.delta / self.base

    @property
    def increase_exceeded(self) -> bool:
        return self.max_increase_pct is not None and self.pct is not None and self.pct > self.max_increase_pct + 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "base": self.base,
            "head": self.head,
            "delta": round(self.delta, 2),
            "pct": None if self.pct is None else round(self.pct, 2),
            "max_increase_pct": self.max_increase_pct,
            "increase_exceeded": self.increase_exceeded,
            "ceiling": {
                "base": None if self.base_ceiling is None else round(self.base_ceiling, 2),
                "head": None if self.head_ceiling is None else round(self.head_ceiling, 2),
                "delta": round(self.ceiling_delta, 2),
            },
            "stale_items": self.stale,
            "over_budget": [{"scope": s, "estimate": round(e, 2), "budget": b} for s, e, b in self.over_budget],
            "items": [
                {
                    "address": i.address,
                    "path": i.path,
                    "item": i.item,
                    "change": i.change,
                    "base": i.base,
                    "head": i.head,
                    "delta": round(i.delta, 2),
                    "ceiling_delta": round(i.ceiling_delta, 2),
                }
                for i in self.items
            ],
        }


@dataclass
class CostDiff:
    envs: list[EnvDelta]
    base_label: str
    head_label: str

    @property
    def base(self) -> float:
        return sum(e.base or 0.0 for e in self.envs)

    @property
    def head(self) -> float:
        return sum(e.head or 0.0 for e in self.envs)

    @property
    def ceiling_delta(self) -> float:
        return sum(e.ceiling_delta for e in self.envs)

    @property
    def failing(self) -> list[str]:
        """Why this diff should fail a check: an increase above the limit, or a budget crossed."""
        reasons = []
        for e in self.envs:
            if e.increase_exceeded:
                reasons.append(f"{e.env}: +{e.pct:.1f}% is above its budget.max_increase_pct ({e.max_increase_pct:g}%)")
            for scope, est, budget in e.over_budget:
                what = " with every pool at its maximum" if scope == "ceiling" else ""
                reasons.append(f"{e.env}: {usd(est)}{what} crosses its {scope} budget of {usd(budget)}")
        return reasons

    def to_dict(self) -> dict[str, Any]:
        pct = None if not self.base else round(100 * (self.head - self.base) / self.base, 2)
        return {
            "base": self.base_label,
            "head": self.head_label,
            "monthly": {"base": round(self.base, 2), "head": round(self.head, 2), "delta": round(self.head - self.base, 2), "pct": pct},
            "ceiling_delta": round(self.ceiling_delta, 2),
            "failing": self.failing,
            "environments": [e.to_dict() for e in self.envs],
        }


def _items(env: EnvCost) -> dict[tuple[str, str], tuple[str, float, float]]:
    """(path, monthly, share of the ceiling) per (address, item)."""
    out: dict[tuple[str, str], tuple[str, float, float]] = {}
    for r in env.resources:
        for i in r.items:
            m = i.monthly()
            key = (r.address, i.ident)
            _, prev, prev_ceiling = out.get(key, (r.path, 0.0, 0.0))
            out[key] = (r.path, prev + (m or 0.0), prev_ceiling + i.ceiling_monthly())
    return out


def diff(base: CostReport, head: CostReport) -> CostDiff:
    """Compare two reports environment by environment; the allowed increase is the head's."""
    base_envs = {e.env: e for e in base.envs}
    head_envs = {e.env: e for e in head.envs}
    names = list(head_envs) + [n for n in base_envs if n not in head_envs]
    envs = []
    for name in names:
        b, h = base_envs.get(name), head_envs.get(name)
        bi, hi = (_items(b) if b else {}), (_items(h) if h else {})
        rows = []
        for key in list(hi) + [k for k in bi if k not in hi]:
            bv, hv = bi.get(key), hi.get(key)
            if bv is not None and hv is not None and abs(bv[1] - hv[1]) < 0.005 and abs(bv[2] - hv[2]) < 0.005:
                continue
            path = (hv or bv or ("", 0.0, 0.0))[0]
            rows.append(
                ItemDelta(key[0], path, key[1], bv[1] if bv else None, hv[1] if hv else None, bv[2] if bv else 0.0, hv[2] if hv else 0.0)
            )
        rows.sort(key=lambda d: (-abs(d.delta), -abs(d.ceiling_delta)))
        envs.append(
            EnvDelta(
                name,
                b.total() if b else None,
                h.total() if h else None,
                h.max_increase_pct if h else None,
                rows,
                h.over_budget() if h else [],
                b.ceiling() if b else None,
                h.ceiling() if h else None,
                len(h.stale_items()) if h else 0,
            )
        )
    return CostDiff(envs, "base", "head")


def markdown(d: CostDiff, *, limit: int = MARKDOWN_LIMIT) -> str:
    delta = d.head - d.base
    pct = f" ({100 * delta / d.base:+.1f}%)" if d.base else ""
    up, down = delta > 0.005 or d.ceiling_delta > 0.005, delta < -0.005 or d.ceiling_delta < -0.005
    icon = "❌" if d.failing else "📈" if up else "📉" if down else "➖"
    lines = [
        f"### {icon} Cost: {usd(delta, sign=True)}/month{pct}, ceiling {usd(d.ceiling_delta, sign=True)}",
        "",
        f"`{d.base_label}` → `{d.head_label}`: {usd(d.base)} → {usd(d.head)} a month, as configured (spot where configured). "
        "The ceiling is the month with every node group and pool at its maximum: what the change permits, not what it is expected to cost.",
        "",
        "| environment | base | head | Δ $/month | Δ % | limit | ceiling | Δ ceiling | items changed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in d.envs:
        pct_text = "new" if e.base is None else "removed" if e.head is None else f"{e.pct:+.1f}%" if e.pct is not None else "–"
        limit_text = f"{e.max_increase_pct:g}%" if e.max_increase_pct is not None else "–"
        if e.increase_exceeded:
            pct_text = f"**{pct_text}** ❌"
        lines.append(
            f"| {e.env} | {usd(e.base)} | {usd(e.head)} | {usd(e.delta, sign=True)} | {pct_text} | {limit_text} "
            f"| {usd(e.head_ceiling)} | {usd(e.ceiling_delta, sign=True)} | {len(e.items)} |"
        )
    lines.append("")
    lines += [f"- {e.env}: {e.change_text()}" for e in d.envs]
    for reason in d.failing:
        lines.append(f"\n❌ {reason}")
    stale = sum(e.stale for e in d.envs)
    if stale:
        lines.append(
            f"\n⏳ {stale} cost item(s) of the head use a price older than its maximum age: run `infra cost refresh` (docs/cost.md)."
        )
    text = "\n".join(lines) + "\n"
    note = "\n{n} change row(s) left out to stay under {limit:,} characters; `infra cost diff --format json` has them all.\n"
    budget = limit - len(text) - len(note) - 100
    left_out = 0
    for e in d.envs:
        if not e.items:
            continue
        head = f"\n<details><summary>{e.env}: {len(e.items)} cost item(s) changed</summary>\n\n| resource | cost item | change | base | head | Δ $/month | Δ ceiling |\n|---|---|---|---:|---:|---:|---:|"
        tail = "\n\n</details>\n"
        if len(head) + len(tail) > budget:
            left_out += len(e.items)
            continue
        section, budget = head, budget - len(head) - len(tail)
        for i in e.items:
            row = f"\n| `{md_cell(i.path)}` | {md_cell(i.item)} | {i.change} | {usd(i.base)} | {usd(i.head)} | {usd(i.delta, sign=True)} | {usd(i.ceiling_delta, sign=True)} |"
            if len(row) > budget:
                left_out += 1
                continue
            section += row
            budget -= len(row)
        text += section + tail
    if left_out:
        text += note.format(n=left_out, limit=limit)
    return text


def against_base(
    names: list[str] | None,
    outdir: Path,
    env_dir: Path,
    *,
    base: str | None = None,
    base_outdir: Path | None = None,
    base_env_dir: Path | None = None,
) -> CostDiff:
    """``infra cost diff``: the cost change of ``outdir`` (the working tree) against a git ref
    (synthesized in a temporary worktree) or an existing synth output."""
    from environments.loader import load_environments
    from infra.cost.estimate import estimate
    from infra.synth import synth_ref

    if (base is None) == (base_outdir is None):
        raise InfraError("infra cost diff needs exactly one of --base REF or --base-outdir DIR")
    if base is not None:
        base_out, base_envs = synth_ref(base)
        label = base
    else:
        assert base_outdir is not None
        base_out, base_envs, label = base_outdir, base_env_dir or env_dir, str(base_outdir)
    head = estimate(outdir, env_dir, names or None)
    known_base = load_environments(base_envs)
    base_report = estimate(base_out, known_base, [e.env for e in head.envs if e.env in known_base])
    result = diff(base_report, head)
    result.base_label, result.head_label = label, "working tree"
    return result
