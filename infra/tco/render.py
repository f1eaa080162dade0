"""The TCO report for people: the summary table, Markdown, PNG charts and a self-contained HTML page."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

from infra.tco.model import CLOUD_SCENARIOS, Projection, TcoReport

TEMPLATE = Path(__file__).with_name("tco.html.j2")


def _usd(v: float) -> str:
    return f"${v:,.0f}"


def _break_even_text(p: Projection, scenario: str) -> str:
    if not p.gpus_in_use:
        return "no GPUs"
    if not p.owns:
        return "see platform"
    m = p.break_even(scenario)
    return f"month {m}" if m else f"not within {p.months // 12} years"


def summary_rows(t: TcoReport) -> list[list[str]]:
    rows = []
    for p in t.projections:
        gpus = ", ".join(f"{v:.1f} × {k}" for k, v in p.gpus_in_use.items()) or "none"
        rows.append(
            [
                p.scope,
                gpus,
                *[_usd(p.total(s)) for s in CLOUD_SCENARIOS],
                _usd(p.total("on-prem")) if p.owns else "–",
                _usd(sum(p.onprem_amortized)) if p.owns else "–",
                *[_break_even_text(p, s) for s in ("configured", "commit-3y")],
            ]
        )
    return rows


SUMMARY_HEADER = [
    "scope",
    "GPUs in use (month 1)",
    "cloud on-demand",
    "cloud as configured",
    "cloud 1-y commit",
    "cloud 3-y commit",
    "on-prem (cash)",
    "on-prem (amortized)",
    "break-even vs configured",
    "vs 3-y commit",
]


def markdown(t: TcoReport, charts: dict[str, str] | None = None) -> str:
    years = int(t.assumptions["horizon_years"])
    lines = [
        f"### {years}-year TCO: cloud against on-prem GPU servers",
        "",
        f"Totals over {years * 12} months with {t.assumptions['growth_pct_per_year']:g}% growth a year; on-prem keeps the non-GPU part in the cloud (as configured) and pays purchases in cash.",
        "",
        f"**Verdict (the platform row).** {t.verdict()}",
        "",
        "| " + " | ".join(SUMMARY_HEADER) + " |",
        "|---|---|" + "---:|" * 6 + "---|---|",
        *["| " + " | ".join(r) + " |" for r in summary_rows(t)],
        "",
        "#### Platform by year",
        "",
        "| year | cloud as configured | cloud 3-y commit | on-prem (cash) | on-prem (amortized) | servers owned | cabinets |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    p = t.platform
    for y in range(years):
        sl = slice(12 * y, 12 * y + 12)
        owned = ", ".join(f"{n} × {k}" for k, n in p.servers[12 * y + 11].items()) or "–"
        lines.append(
            f"| {y + 1} | {_usd(sum(p.cloud['configured'][sl]))} | {_usd(sum(p.cloud['commit-3y'][sl]))} | {_usd(sum(p.onprem[sl]))} | {_usd(sum(p.onprem_amortized[sl]))} | {owned} | {p.cabinets[12 * y + 11]} |"
        )
    lines += ["", "#### Assumptions", "", "| assumption | value | source |", "|---|---:|---|"]
    for key, value in t.assumptions.values.items():
        mark = " (set on the command line)" if key in t.assumptions.overridden else ""
        lines.append(f"| {key} | {value:g}{mark} | {t.assumptions.sources[key]} |")
    for name, spec in t.assumptions.servers.items():
        lines.append(
            f"| server {name} | {spec['gpus']:g} GPUs, {_usd(spec['price_usd'])}, {spec['power_kw']:g} kW | {t.assumptions.sources[f'servers.{name}']} |"
        )
    if charts:
        lines += ["", *[f"![{title}]({path})" for title, path in charts.items()]]
    return "\n".join(lines) + "\n"


def charts(t: TcoReport, outdir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    months = list(range(1, t.platform.months + 1))
    paths = {}

    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    keys = list(t.by_env_cloud)  # environments in file order (dev, staging, production), then cloud
    ax.stackplot(months, [t.by_env_cloud[k] for k in keys], labels=[f"{e} / {c}" for e, c in keys], alpha=0.85)
    paths["monthly cost by environment and cloud"] = _finish(
        fig, ax, "Monthly cloud cost by environment and cloud (as configured, with growth)", "USD per month", outdir / "tco-monthly.png"
    )

    p = t.platform
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    for s, style in zip(CLOUD_SCENARIOS, ("-", "-", "--", "--"), strict=True):
        ax.plot(months, p.cumulative(p.cloud[s]), style, label=f"cloud {s}")
    ax.plot(months, p.cumulative(p.onprem), "-", color="black", linewidth=2, label="on-prem GPU servers (cash)")
    ax.plot(months, p.cumulative(p.onprem_amortized), ":", color="black", linewidth=1.5, label="on-prem, purchases amortized")
    be = p.break_even("configured")
    if be:
        ax.axvline(be, color="red", linestyle=":", linewidth=1.5)
        ax.annotate(
            f"break-even vs as configured: month {be}",
            xy=(be, p.cumulative(p.onprem)[be - 1]),
            xytext=(10, 30),
            textcoords="offset points",
            color="red",
            arrowprops={"arrowstyle": "->", "color": "red"},
        )
    else:
        ax.text(
            0.98, 0.04, f"no break-even within {p.months // 12} years (vs as configured)", transform=ax.transAxes, color="red", ha="right"
        )
    paths["cumulative TCO with break-even"] = _finish(
        fig, ax, f"Cumulative {p.months // 12}-year cost of the platform", "USD, cumulative", outdir / "tco-cumulative.png"
    )
    return paths


def _finish(fig: Any, ax: Any, title: str, ylabel: str, path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import StrMethodFormatter

    ax.set_title(title)
    ax.set_xlabel("month")
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def html(t: TcoReport, chart_paths: dict[str, Path]) -> str:
    """A self-contained page: the charts are embedded as data URIs."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    images = {title: base64.b64encode(path.read_bytes()).decode("ascii") for title, path in chart_paths.items()}
    p = t.platform
    years = [
        [
            str(y + 1),
            _usd(sum(p.cloud["configured"][12 * y : 12 * y + 12])),
            _usd(sum(p.cloud["commit-3y"][12 * y : 12 * y + 12])),
            _usd(sum(p.onprem[12 * y : 12 * y + 12])),
            _usd(sum(p.onprem_amortized[12 * y : 12 * y + 12])),
        ]
        for y in range(p.months // 12)
    ]
    assumptions = [(k, f"{v:g}", t.assumptions.sources[k], k in t.assumptions.overridden) for k, v in t.assumptions.values.items()]
    servers = [
        (n, f"{s['gpus']:g} GPUs, {_usd(s['price_usd'])}, {s['power_kw']:g} kW", t.assumptions.sources[f"servers.{n}"])
        for n, s in t.assumptions.servers.items()
    ]
    return template.render(
        verdict=t.verdict(),
        years=int(t.assumptions["horizon_years"]),
        growth=t.assumptions["growth_pct_per_year"],
        header=SUMMARY_HEADER,
        rows=summary_rows(t),
        by_year=years,
        assumptions=assumptions,
        servers=servers,
        images=images,
        generated=dt.date.today().isoformat(),
    )


def write(t: TcoReport, outdir: Path) -> dict[str, Path]:
    """Write tco.md, tco.html, tco.json and the two PNGs into ``outdir``; return their paths."""
    import json

    chart_paths = charts(t, outdir)
    files = {
        "markdown": outdir / "tco.md",
        "html": outdir / "tco.html",
        "json": outdir / "tco.json",
        **{f"chart: {k}": v for k, v in chart_paths.items()},
    }
    files["markdown"].write_text(markdown(t, {k: v.name for k, v in chart_paths.items()}), encoding="utf-8")
    files["html"].write_text(html(t, chart_paths), encoding="utf-8")
    files["json"].write_text(json.dumps(t.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    return files
