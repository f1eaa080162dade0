"""TCO: the break-even month on a hand-checkable case, growth, server refresh, overrides, and
the report files (Markdown, self-contained HTML, PNG charts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.cli.app import main
from infra.cost.model import CostItem, CostReport, EnvCost, ResourceCost
from infra.tco import model as tco
from infra.tco import render

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# nothing but the server's price: a server of 1 GPU for $1,000, no running costs
SIMPLE = [
    "growth_pct_per_year=0",
    "utilization=1",
    "pue=1",
    "electricity_usd_per_kwh=0",
    "colocation_usd_per_kw_month=0",
    "staff_usd_per_fte_year=0",
    "staff_fte_min=0",
    "maintenance_pct_per_year=0",
    "depreciation_years=4",
    "servers.nvidia-l4.gpus=1",
    "servers.nvidia-l4.price_usd=1000",
    "servers.nvidia-l4.power_kw=0",
]


def one_gpu(monthly: float, fixed: float = 0.0) -> CostReport:
    """One environment running one L4 all month for ``monthly`` dollars, plus ``fixed``."""
    gpu = CostItem("node-hours", "fixed", 730, "node-hour", monthly / 730, "https://example.com", gpu="nvidia-l4", gpus=1)
    items = [ResourceCost("t", "aws_eks_node_group.g", "t/aws-gpu-l4", "aws_eks_node_group", "aws", "priced", [gpu])]
    if fixed:
        cp = CostItem("control plane", "fixed", 730, "cluster-hour", fixed / 730, "https://example.com")
        items.append(ResourceCost("t", "aws_eks_cluster.c", "t/aws-eks", "aws_eks_cluster", "aws", "priced", [cp]))
    return CostReport([EnvCost("t", ["t"], items, {"total": 10_000})], "catalog", 730)


def test_break_even_on_a_hand_checkable_case() -> None:
    a = tco.load_assumptions(SIMPLE)
    t = tco.build(one_gpu(100.0, fixed=50.0), a)
    p = t.platform
    assert p.gpus_in_use == {"nvidia-l4": pytest.approx(1.0)}
    # on-prem: $1,000 in month 1 plus the $50 that stays in the cloud; cloud: $150 a month
    # cumulative: on-prem 1000 + 50m, cloud 150m -> equal at m = 10
    assert p.break_even("configured") == 10
    assert p.onprem[0] == pytest.approx(1050)
    assert p.onprem[1] == pytest.approx(50)
    # the server is bought again after 4 years (month 49), and the amortized view spreads it
    assert p.onprem[48] == pytest.approx(1050)
    assert p.onprem_amortized[0] == pytest.approx(50 + 1000 / 48)
    assert p.total("on-prem") == pytest.approx(2 * 1000 + 60 * 50)


def test_growth_buys_servers_when_demand_needs_them() -> None:
    a = tco.load_assumptions([*SIMPLE, "growth_pct_per_year=100", "utilization=0.5"])
    p = tco.build(one_gpu(100.0), a).platform
    # 1 GPU in use at 50 % utilization: 2 owned; demand doubles after a year: 4 owned
    assert p.servers[0] == {"nvidia-l4": 2}
    assert p.servers[12] == {"nvidia-l4": 4}
    assert p.cloud["configured"][12] == pytest.approx(200.0)


def test_no_break_even_when_owning_costs_more() -> None:
    a = tco.load_assumptions([*SIMPLE, "staff_usd_per_fte_year=1200000", "staff_fte_min=1"])
    p = tco.build(one_gpu(100.0), a).platform
    assert p.break_even("configured") is None
    assert "not within 5 years" in render.markdown(tco.build(one_gpu(100.0), a))


def test_unknown_or_bad_overrides_name_the_key() -> None:
    with pytest.raises(tco.AssumptionError, match="unknown assumption"):
        tco.load_assumptions(["pue_typo=1.2"])
    with pytest.raises(tco.AssumptionError, match="utilization"):
        tco.load_assumptions(["utilization=1.5"])
    with pytest.raises(tco.AssumptionError, match="not a number"):
        tco.load_assumptions(["pue=high"])


def test_every_assumption_has_a_source() -> None:
    a = tco.load_assumptions()
    for key in a.values:
        assert "read 20" in a.sources[key], key
    for name in a.servers:
        assert a.sources[f"servers.{name}"], name


def test_cli_writes_markdown_html_and_charts(synth_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    code = main(["tco", "--outdir", str(synth_out), "--report-dir", str(out), "--years", "3", "--set", "pue=1.2", "-f", "json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["assumptions"]["pue"] == {"value": 1.2, "source": data["assumptions"]["pue"]["source"], "overridden": True}
    platform = data["projections"][-1]
    assert platform["scope"] == "platform" and platform["months"] == 36
    assert platform["totals"]["on-demand"] >= platform["totals"]["configured"] > 0
    for name in ("tco-monthly.png", "tco-cumulative.png"):
        png = (out / name).read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    page = (out / "tco.html").read_text()
    assert (
        page.count("data:image/png;base64,") == 2 and "<img" in page and "http" not in page.split("<body>")[1].split("<h2>Assumptions")[0]
    )
    md = (out / "tco.md").read_text()
    assert "| platform |" in md and "![cumulative TCO with break-even](tco-cumulative.png)" in md


def gpus_report(envs: dict[str, float]) -> CostReport:
    """Environments each running ``n`` L4s all month (one L4 per node), $100 a GPU-month."""
    out = []
    for name, n in envs.items():
        gpu = CostItem("node-hours", "fixed", 730 * n, "node-hour", 100 / 730, "https://example.com", gpu="nvidia-l4", gpus=1)
        out.append(
            EnvCost(
                name,
                [name],
                [ResourceCost(name, "g.g", f"{name}/aws-gpu-l4", "aws_eks_node_group", "aws", "priced", [gpu])],
                {"total": 1e6},
            )
        )
    return CostReport(out, "catalog", 730)


def test_the_platform_owns_the_servers_and_is_the_verdict() -> None:
    # dev 0.4 and staging 0.4 L4s: on their own each would buy a whole 8-GPU server; the platform
    # needs ceil(0.8 / 0.6) = 2 GPUs, one server
    a = tco.load_assumptions()
    t = tco.build(gpus_report({"dev": 0.4, "staging": 0.4}), a)
    dev, staging, platform = t.projections
    assert not dev.owns and not staging.owns and platform.owns
    assert platform.servers[0] == {"nvidia-l4": 1}
    assert dev.break_even("configured") is None and dev.to_dict()["totals"]["on-prem"] is None
    rows = {r[0]: r for r in render.summary_rows(t)}
    assert rows["dev"][6] == "–" and rows["dev"][8] == "see platform" and rows["platform"][6].startswith("$")
    text = render.markdown(t)
    assert "**Verdict (the platform row).**" in text and "bought whole" in text and "fraction of a server" in text


def test_colocation_is_rented_in_whole_cabinets() -> None:
    # 7 L4s in use, 1 per server at 1.6 kW: 11.2 kW of servers = 2 cabinets of 10 kW × $196 = $3,920 a month
    # (priced per kW drawn it would have been 11.2 × $196 = $2,195.20); nothing else costs anything
    a = tco.load_assumptions([*SIMPLE, "servers.nvidia-l4.power_kw=1.6", "colocation_usd_per_kw_month=196"])
    p = tco.build(gpus_report({"prod": 7}), a).platform
    assert p.servers[1] == {"nvidia-l4": 7} and p.cabinets[1] == 2
    assert p.onprem[1] == pytest.approx(3920.0)
    # 6 servers (9.6 kW) fit one cabinet: $1,960
    assert tco.build(gpus_report({"prod": 6}), a).platform.onprem[1] == pytest.approx(1960.0)
    with pytest.raises(tco.AssumptionError, match="colocation_cabinet_kw"):
        tco.load_assumptions(["colocation_cabinet_kw=0"])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{value: 1, unit: x, read: 2026-12-01}", "source: missing; cite a source, or mark it `assumption: true`"),
        ('{value: 1, unit: x, source: "assumption: mine", read: 2026-12-01}', "source: missing"),
        ("{value: 1, unit: x, assumption: true, read: 2026-12-01}", "reason: an assumption says why"),
        ('{value: 1, unit: x, assumption: true, reason: "because I say so, really", source: "https://x", read: 2026-12-01}', "not both"),
        ('{value: 1, unit: x, source: "https://example.com"}', "read: missing"),
    ],
)
def test_every_figure_cites_a_source_or_is_an_assumption_with_a_reason(tmp_path: Path, entry: str, message: str) -> None:
    text = tco.TCO_FILE.read_text().replace("assumptions:\n", f"assumptions:\n  extra: {entry}\n", 1)
    path = tmp_path / "tco.yaml"
    path.write_text(text)
    with pytest.raises(tco.AssumptionError, match=message):
        tco.load_assumptions(path=path)


def test_staff_utilization_and_server_prices_are_cited_or_marked() -> None:
    a = tco.load_assumptions()
    for key in ("staff_usd_per_fte_year", "staff_fte_per_server", "staff_fte_min", "utilization", "colocation_cabinet_kw"):
        assert a.sources[key].startswith("assumption: "), key
    assert "https://" in a.sources["colocation_usd_per_kw_month"] and "unconfirmed" in a.sources["colocation_usd_per_kw_month"]
    assert "https://" in a.sources["servers.nvidia-h100"]
    assert a.sources["servers.nvidia-l4"].startswith("assumption: ")
