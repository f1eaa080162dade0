"""Prices that stay true: stale prices marked in every report, spot per family and zone,
commitments on the committed baseline only, the ceiling (every pool at its maximum) and the
budget that caps it, and the small lines (X-Ray, log storage, KMS, Container Insights). Each
expectation is computed by hand in its comment from the catalog's figures."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from environments.loader import EnvironmentFileError, load_environments
from environments.schema import Environment, Usage
from infra.cli.app import main
from infra.cost import diff as cost_diff
from infra.cost import report as cost_report
from infra.cost.catalog import CATALOG_FILE, Catalog, CatalogError, load_catalog, parse_catalog
from infra.cost.estimate import estimate, price_stack
from infra.cost.model import CostItem, ResourceCost
from infra.review.compare import EnvReview, Review
from infra.review.report import SUMMARY_HEADER, summary_rows
from infra.synthesized.reader import Stack
from tests.conftest import read_env, write_env

H = 730
CATALOG = load_catalog()


def catalog_with(*aws_lines: str, gcp_lines: tuple[str, ...] = (), replace: tuple[tuple[str, str], ...] = ()) -> Catalog:
    """The repository's catalog with entries added to aws us-east-1 / gcp us-central1, or text replaced."""
    text = CATALOG_FILE.read_text()
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("aws:\n  us-east-1:\n", "aws:\n  us-east-1:\n" + "".join(f"    {line}\n" for line in aws_lines))
    text = text.replace("gcp:\n  us-central1:\n", "gcp:\n  us-central1:\n" + "".join(f"    {line}\n" for line in gcp_lines))
    return parse_catalog(text, CATALOG_FILE)


def p(key: str, cloud: str = "aws", region: str = "us-east-1", catalog: Catalog = CATALOG) -> float:
    return catalog.get(cloud, region, key).value


def priced(
    resources: dict[str, dict[str, dict[str, Any]]],
    env: Environment | None = None,
    catalog: Catalog = CATALOG,
    today: dt.date = dt.date(2026, 12, 1),
) -> dict[str, ResourceCost]:
    raw = {"provider": {"aws": [{"region": "us-east-1"}], "google": [{"region": "us-central1"}]}, "resource": resources}
    return {r.address: r for r in price_stack(Stack("test", Path("test/cdk.tf.json"), raw), env, catalog, today)}


def by_key(r: ResourceCost) -> dict[str, CostItem]:
    return {i.ident: i for i in r.items}


def with_usage(env: Environment, **usage: Any) -> Environment:
    return env.model_copy(update={"usage": Usage(**usage)})


SUBNETS = {
    "a": {"availability_zone": "us-east-1a", "cidr_block": "10.0.0.0/24"},
    "b": {"availability_zone": "us-east-1b", "cidr_block": "10.0.1.0/24"},
}


def gpu_group(**scaling: int) -> dict[str, Any]:
    return {
        "instance_types": ["g6.2xlarge"],
        "capacity_type": "SPOT",
        "subnet_ids": ["${aws_subnet.a.id}", "${aws_subnet.b.id}"],
        "scaling_config": {"min_size": 0, "desired_size": 0, "max_size": 3, **scaling},
        "//": {"metadata": {"path": "t/aws-gpu-l4/group/node-group"}},
    }


# -- 1. stale prices -----------------------------------------------------------------------------


def test_a_price_older_than_its_max_age_is_stale_in_every_report(environments: dict[str, Environment]) -> None:
    # eks/cluster-standard read 2026-08-01: 90 days (max_age.default) later is 2026-10-30
    old = catalog_with(
        replace=(
            (
                "eks/cluster-standard: {usd: 0.10, unit: cluster-hour, source: aws-eks, read: 2026-11-24}",
                "eks/cluster-standard: {usd: 0.10, unit: cluster-hour, source: aws-eks, read: 2026-08-01}",
            ),
        )
    )
    cluster = {"aws_eks_cluster": {"c": {"name": "x", "upgrade_policy": {"support_type": "STANDARD"}}}}
    on_the_day = priced(cluster, catalog=old, today=dt.date(2026, 10, 30))["aws_eks_cluster.c"].items[0]
    day_after = priced(cluster, catalog=old, today=dt.date(2026, 10, 31))["aws_eks_cluster.c"].items[0]
    assert not on_the_day.stale and day_after.stale
    assert day_after.read == dt.date(2026, 8, 1)
    # spot ages faster: 30 days (max_age.spot)
    assert old.age_of("spot/ec2/g6").days == 30 and old.age_of("ec2/g6.xlarge").days == 90


def test_stale_prices_are_marked_in_table_markdown_json_and_diff(synth_out: Path, env_dir: Path) -> None:
    # a day long after every read date: every item is stale
    report = estimate(synth_out, env_dir, ["dev"], today=dt.date(2027, 12, 1))
    (env,) = report.envs
    stale = env.stale_items()
    assert stale and len(stale) == sum(len(r.items) for r in env.resources)
    text = cost_report.markdown(report)
    assert "⏳" in text and "older than its maximum age on 2027-12-01" in text and "infra cost refresh" in text
    data = json.loads(cost_report.to_json(report))
    assert data["environments"][0]["stale_items"] == len(stale)
    assert all(i["stale"] for r in data["environments"][0]["resources"] for i in r["items"])
    console = Console(width=1000, record=True, file=io.StringIO())
    for table in cost_report.tables(report):
        console.print(table)
    assert "stale price (from 2026-" in console.export_text()
    # and the diff counts the head's stale items
    base = estimate(synth_out, env_dir, ["dev"], today=dt.date(2026, 12, 1))
    d = cost_diff.diff(base, report)
    assert d.envs[0].stale == len(stale)
    assert "⏳" in cost_diff.markdown(d)
    fresh = estimate(synth_out, env_dir, ["dev"], today=dt.date(2026, 12, 1))
    assert len(fresh.envs[0].stale_items()) < len(stale)


def test_the_catalog_needs_a_default_max_age_with_its_reason(tmp_path: Path) -> None:
    text = CATALOG_FILE.read_text()
    bad = tmp_path / "prices.yaml"
    bad.write_text(text.replace("  default: {days: 90,", "  list: {days: 90,"))
    with pytest.raises(CatalogError, match="max_age needs a default"):
        load_catalog(bad)
    bad.write_text(text.replace('spot: {days: 30, reason: "spot prices move', 'spot: {days: 30, reason: "short", x: "'))
    with pytest.raises(CatalogError, match="max_age"):
        load_catalog(bad)
    bad.write_text(text.replace("read: 2026-12-01, as_of: 2026-08-20", "read: 2026-08-01, as_of: 2026-08-20", 1))
    with pytest.raises(CatalogError, match="as_of 2026-08-20 is after read 2026-08-01"):
        load_catalog(bad)


# -- 2. spot per family and zone, commitments on the baseline ------------------------------------


def test_spot_is_priced_per_family_and_per_zone_where_the_catalog_has_the_zone() -> None:
    # zone a read by a refresh at $0.45; zone b has none: the family factor, 0.52 × $0.9776 = $0.508352
    # the group's price is the mean over its zones: (0.45 + 0.508352) / 2 = $0.479176 an hour
    zoned = catalog_with(
        "spot/ec2/g6.2xlarge@us-east-1a: {usd: 0.45, unit: instance-hour, source: aws-spot-price-history, read: 2026-12-01}"
    )
    resources = {"aws_subnet": SUBNETS, "aws_eks_node_group": {"g": gpu_group(min_size=1)}}
    floor = by_key(priced(resources, catalog=zoned)["aws_eks_node_group.g"])["node-hours:floor"]
    assert floor.unit_price == pytest.approx(0.479176)
    assert floor.monthly() == pytest.approx(0.479176 * H)
    assert "us-east-1a $0.4500" in floor.note and "us-east-1b $0.5084 (regional)" in floor.note
    # without zone prices: the g6 family's factor, not one factor per cloud
    plain = by_key(priced(resources)["aws_eks_node_group.g"])["node-hours:floor"]
    assert plain.unit_price == pytest.approx(0.9776 * p("spot/ec2/g6"))
    assert p("spot/ec2/g6") != p("spot/ec2/t3")


def test_gcp_spot_and_commitments_are_per_family() -> None:
    def pool(machine: str, spot: bool) -> dict[str, Any]:
        return {
            "autoscaling": {"min_node_count": 1, "max_node_count": 1},
            "location": "us-central1-a",
            "node_config": {"machine_type": machine, "spot": spot},
        }

    result = priced({"google_container_node_pool": {"e2": pool("e2-standard-4", True), "a2": pool("a2-highgpu-1g", False)}})
    e2 = by_key(result["google_container_node_pool.e2"])["node-hours:floor"]
    a2 = by_key(result["google_container_node_pool.a2"])["node-hours:floor"]
    # E2 spot: 0.60 × $0.134012; A2 3-year commitment: 0.35 × $3.6733822 (not one 0.45 for the cloud)
    assert e2.unit_price == pytest.approx(0.60 * 0.134012)
    assert a2.rate("commit-3y") == pytest.approx(0.35 * 3.6733822)
    assert a2.rate("commit-1y") == pytest.approx(0.63 * 3.6733822)


def test_commitments_cover_the_baseline_not_the_burst_above_it(environments: dict[str, Environment]) -> None:
    # an on-demand g6.2xlarge group, min 1, 1,460 node-hours expected: 730 h of floor, 730 h above it
    group = gpu_group(min_size=1, max_size=4) | {"capacity_type": "ON_DEMAND"}
    env = with_usage(environments["production"], gpu_node_hours={"aws/l4": 1460})
    items = by_key(priced({"aws_subnet": SUBNETS, "aws_eks_node_group": {"g": group}}, env)["aws_eks_node_group.g"])
    floor, above = items["node-hours:floor"], items["node-hours:above"]
    # 3-year: the floor at 0.50 × $0.9776 = $0.4888 (730 h: $356.82), the burst at $0.9776 (730 h: $713.65)
    assert floor.monthly("commit-3y") == pytest.approx(730 * 0.4888)
    assert above.monthly("commit-3y") == pytest.approx(730 * 0.9776)
    assert (floor.monthly("commit-3y") or 0) + (above.monthly("commit-3y") or 0) == pytest.approx(1070.472)  # was 1460 × 0.4888
    # the 1-year scenario too, and on-demand is on-demand everywhere
    assert above.monthly("commit-1y") == above.monthly("on-demand") == pytest.approx(713.648)


def test_every_machine_in_the_catalog_has_spot_and_commitment_factors_for_its_family() -> None:
    from infra.cost.pricing import family_of

    for cloud, region, key in CATALOG.prices:
        service, _, machine = key.partition("/")
        if service not in ("ec2", "gce", "gpu"):
            continue
        svc = "gce" if service in ("gce", "gpu") else "ec2"
        family = family_of(svc, machine)
        for scenario in ("spot", "commit-1y", "commit-3y"):
            factor = CATALOG.find(cloud, region, f"{scenario}/{svc}/{family}")
            assert factor is not None and factor.kind == "factor", (key, scenario)
            assert factor.source.startswith("https://") and factor.note, (key, scenario)


# -- 3. the ceiling ------------------------------------------------------------------------------


def test_the_ceiling_holds_every_pool_at_its_maximum(environments: dict[str, Environment]) -> None:
    # spot g6.2xlarge at 0.52 × $0.9776 = $0.508352/h, min 0, max 3, 80 h expected:
    # expected $40.67; ceiling 3 × 730 h × $0.508352 = $1,113.29, plus 3 × 100 GB of gp3 at $0.08 = $24
    group = gpu_group(max_size=3) | {"launch_template": None, "disk_size": 100}
    env = with_usage(environments["dev"], gpu_node_hours={"aws/l4": 80})
    r = priced({"aws_eks_node_group": {"g": group}}, env)["aws_eks_node_group.g"]
    items = by_key(r)
    assert items["node-hours:above"].monthly() == pytest.approx(80 * 0.508352)
    assert items["node-hours:above"].ceiling_monthly() == pytest.approx(3 * H * 0.508352)
    assert items["node volumes"].ceiling_monthly() == pytest.approx(3 * 100 * p("ebs/gp2"))  # no launch template: gp2
    assert r.ceiling() == pytest.approx(1113.29088 + 30.0)


def test_raising_a_max_shows_nothing_expected_and_the_ceiling_it_permits(
    synth_out: Path, env_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """staging's l4 group (spot g6.xlarge, min 0) from max 3 to 6: usage unchanged, so $0.00 expected;
    the ceiling rises by 3 nodes × 730 h × (0.52 × $0.8048 = $0.418496) = $916.51 (916.50624), their 100 GB gp3
    volumes 3 × 100 × $0.08 = $24.00 and Container Insights' 8 metrics × 3 nodes × $0.30 = $7.20: $947.71."""
    head = tmp_path / "head"
    shutil.copytree(synth_out, head)
    path = head / "stacks" / "staging" / "cdk.tf.json"
    raw = json.loads(path.read_text())
    group = next(v for v in raw["resource"]["aws_eks_node_group"].values() if "aws-gpu-l4/" in v["//"]["metadata"]["path"])
    assert group["scaling_config"]["max_size"] == 3
    group["scaling_config"]["max_size"] = 6
    path.write_text(json.dumps(raw))
    day = dt.date(2026, 12, 1)
    d = cost_diff.diff(estimate(synth_out, env_dir, ["staging"], today=day), estimate(head, env_dir, ["staging"], today=day))
    (env,) = d.envs
    assert env.delta == pytest.approx(0.0, abs=0.005)
    assert env.ceiling_delta == pytest.approx(916.50624 + 24.0 + 7.2)
    assert env.change_text() == "+$0.00 expected, ceiling +$947.71"
    text = cost_diff.markdown(d)
    assert "+$0.00 expected, ceiling +$947.71" in text and "ceiling +$947.71" in text.splitlines()[0]
    # the review's summary cell says the same
    review = Review("base", "head", [EnvReview("staging", "changed", False, "h", "b", cost=env)])
    # (⏳: on 2026-12-01 the G2/E2 factors from the 2026-08-20 snapshot are past their max age)
    assert summary_rows(review)[0][SUMMARY_HEADER.index("Δ $/month")] == "+$0.00, ceiling +$947.71 ⏳"
    # and the CLI's JSON carries it
    code = main(
        ["cost", "diff", "staging", "--outdir", str(head), "--env-dir", str(env_dir), "--base-outdir", str(synth_out), "-f", "json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["environments"][0]["ceiling"]["delta"] == pytest.approx(947.71)


def test_a_budget_may_cap_the_ceiling(synth_out: Path, env_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = read_env(env_dir, "dev")
    dev["budget"]["ceiling_usd"] = 2000  # dev's ceiling is about $3,000: every pool at its maximum
    write_env(env_dir, "dev", dev)
    report = estimate(synth_out, env_dir, ["dev"])
    assert report.envs[0].ceiling() > 2000 > report.envs[0].total()
    assert main(["cost", "dev", "--outdir", str(synth_out), "--env-dir", str(env_dir), "-f", "json"]) == 1
    err = capsys.readouterr().err
    assert "over budget: dev ceiling:" in err and "with every pool at its maximum, budget 2,000.00" in err
    # infra cost diff fails on it too, naming the environment
    code = main(["cost", "diff", "dev", "--outdir", str(synth_out), "--env-dir", str(env_dir), "--base-outdir", str(synth_out)])
    captured = capsys.readouterr()
    assert code == 1 and "dev: $" in captured.err and "crosses its ceiling budget of $2,000.00" in captured.err


@pytest.mark.parametrize(
    ("ceiling", "message"),
    [(1000, "is below monthly_usd (1500)"), (0, "greater than 0"), (-5, "greater than 0")],
)
def test_a_bad_ceiling_budget_names_the_field(env_dir: Path, ceiling: float, message: str) -> None:
    dev = read_env(env_dir, "dev")
    dev["budget"]["ceiling_usd"] = ceiling
    write_env(env_dir, "dev", dev)
    with pytest.raises(EnvironmentFileError) as info:
        load_environments(env_dir)
    problem = info.value.problems[0]
    assert problem.field == "budget.ceiling_usd" and message in problem.message


# -- 4. small lines ------------------------------------------------------------------------------


def test_xray_traces_follow_the_default_sampling_rule(environments: dict[str, Environment]) -> None:
    # 20M requests: the first each second (730 × 3600 = 2,628,000) and 5 % of the other 17,372,000
    # = 2,628,000 + 868,600 = 3,496,600 traces × $5.00 per 1M = $17.483
    fn = {"aws_lambda_function": {"f": {"memory_size": 1024, "tracing_config": {"mode": "Active"}}}}
    r = priced(fn, with_usage(environments["production"], requests_per_month=20_000_000))["aws_lambda_function.f"]
    xray = by_key(r)["xray"]
    assert xray.quantity == pytest.approx(3.4966)
    assert xray.monthly() == pytest.approx(17.483)
    # fewer requests than seconds: every one is traced
    small = priced(fn, with_usage(environments["dev"], requests_per_month=200_000))["aws_lambda_function.f"]
    assert by_key(small)["xray"].quantity == pytest.approx(0.2)
    untraced = priced({"aws_lambda_function": {"f": {"memory_size": 1024}}}, environments["dev"])["aws_lambda_function.f"]
    assert "xray" not in by_key(untraced)


def test_log_storage_is_priced_at_the_retention_configured(environments: dict[str, Environment]) -> None:
    # 60 GB a month over 2 groups = 30 GB each; kept 365 days = 365 / (730 / 24) = 12 months: 360 GB × $0.03 = $10.80
    groups = {"a": {"retention_in_days": 365}, "b": {"retention_in_days": 14}}
    result = priced({"aws_cloudwatch_log_group": groups}, with_usage(environments["dev"], logs_gb=60))
    year = by_key(result["aws_cloudwatch_log_group.a"])["log storage"]
    assert year.quantity == pytest.approx(360.0) and year.monthly() == pytest.approx(10.80)
    # 14 days: 30 × 14 / 30.4167 = 13.81 GB
    assert by_key(result["aws_cloudwatch_log_group.b"])["log storage"].quantity == pytest.approx(30 * 14 * 24 / 730)
    forever = priced({"aws_cloudwatch_log_group": {"c": {}}}, with_usage(environments["dev"], logs_gb=60))
    assert by_key(forever["aws_cloudwatch_log_group.c"])["log storage"].quantity is None  # grows without end: never $0


def test_kms_requests_and_rotation(environments: dict[str, Environment]) -> None:
    # 2M requests over 2 keys: 1M each = 100 × 10k at $0.03 = $3.00; rotation: 2 × $1 at the steady state
    keys = {"a": {"enable_key_rotation": True}, "b": {}}
    result = priced({"aws_kms_key": keys}, with_usage(environments["dev"], kms_requests_per_month=2_000_000))
    a, b = by_key(result["aws_kms_key.a"]), by_key(result["aws_kms_key.b"])
    assert a["requests"].monthly() == pytest.approx(3.00)
    assert a["key rotations"].monthly() == pytest.approx(2.00) and "730 days" in a["key rotations"].note
    assert result["aws_kms_key.a"].monthly() == pytest.approx(1 + 2 + 3)
    assert "key rotations" not in b
    # Cloud KMS: rotated every 90 days, a year on 1 + 4 versions at $0.06 = $0.30
    gkey = priced({"google_kms_crypto_key": {"k": {"rotation_period": "7776000s"}}}, environments["dev"])["google_kms_crypto_key.k"]
    assert by_key(gkey)["active key version"].monthly() == pytest.approx(5 * 0.06)
    assert by_key(gkey)["requests"].quantity is None  # usage.kms_requests_per_month not given: the unit price shows


def test_container_insights_metrics_count_the_clusters_nodes(environments: dict[str, Environment]) -> None:
    # 2 always-on t3.large nodes (max 5): (24 + 8 × 2) metrics × $0.30 = $12.00; ceiling (24 + 8 × 5) × $0.30 = $19.20
    system = {"instance_types": ["t3.large"], "scaling_config": {"min_size": 2, "desired_size": 2, "max_size": 5}}
    addon = {"addon_name": "amazon-cloudwatch-observability", "cluster_name": "c"}
    result = priced({"aws_eks_node_group": {"s": system}, "aws_eks_addon": {"ci": addon, "dns": {"addon_name": "coredns"}}})
    insights = by_key(result["aws_eks_addon.ci"])["container insights"]
    assert insights.quantity == pytest.approx(40) and insights.monthly() == pytest.approx(12.00)
    assert insights.ceiling_monthly() == pytest.approx(19.20)
    assert result["aws_eks_addon.dns"].status == "free" and "EKS add-ons are free" in result["aws_eks_addon.dns"].reason


def test_kms_requests_usage_is_validated(env_dir: Path) -> None:
    dev = read_env(env_dir, "dev")
    dev["usage"]["kms_requests_per_month"] = -1
    write_env(env_dir, "dev", dev)
    with pytest.raises(EnvironmentFileError) as info:
        load_environments(env_dir)
    assert info.value.problems[0].field == "usage.kms_requests_per_month"
