"""Cost estimates: hand-computed expectations per cost item kind, never a silent $0, budgets,
plan JSON, the diff of two snapshots, and the CLI's exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from environments import facts
from environments.schema import Environment, Usage
from infra.cli.app import main
from infra.cost import diff as cost_diff
from infra.cost.catalog import CatalogError, load_catalog
from infra.cost.estimate import estimate, price_stack, stack_from_plan
from infra.cost.model import ResourceCost
from infra.synthesized.reader import Stack, load_stacks
from tests.conftest import read_env, write_env

CATALOG = load_catalog()
H = 730  # hours a month


def price(key: str, cloud: str = "aws", region: str = "us-east-1") -> float:
    return CATALOG.get(cloud, region, key).value


def stack(resources: dict[str, dict[str, dict[str, Any]]], *, aws: str = "us-east-1", gcp: str = "us-central1") -> Stack:
    raw = {"provider": {"aws": [{"region": aws}], "google": [{"region": gcp}]}, "resource": resources}
    return Stack("test", Path("test/cdk.tf.json"), raw)


def priced(resources: dict[str, dict[str, dict[str, Any]]], env: Environment | None = None) -> dict[str, ResourceCost]:
    return {r.address: r for r in price_stack(stack(resources), env, CATALOG)}


def with_usage(env: Environment, **usage: Any) -> Environment:
    return env.model_copy(update={"usage": Usage(**usage)})


def test_an_eks_control_plane_is_ten_cents_an_hour() -> None:
    r = priced({"aws_eks_cluster": {"c": {"name": "x", "upgrade_policy": {"support_type": "STANDARD"}}}})["aws_eks_cluster.c"]
    assert r.status == "priced"
    assert r.monthly() == pytest.approx(0.10 * 730)


def test_a_g2_machine_counts_its_l4_once_even_when_the_pool_declares_it() -> None:
    pool = {
        "autoscaling": {"min_node_count": 1, "max_node_count": 2},
        "location": "us-central1",
        "node_locations": ["us-central1-a"],
        "node_config": {
            "machine_type": "g2-standard-4",
            "disk_size_gb": 100,
            "disk_type": "pd-balanced",
            "guest_accelerator": [{"type": "nvidia-l4", "count": 1}],
        },
    }
    r = priced({"google_container_node_pool": {"gpu": pool}})["google_container_node_pool.gpu"]
    compute = [i for i in r.items if i.unit == "node-hour"]
    assert len(compute) == 1, [i.name for i in r.items]  # no second line for the declared L4
    assert compute[0].monthly() == pytest.approx(price("gce/g2-standard-4", "gcp", "us-central1") * H)
    assert compute[0].gpu == "nvidia-l4" and compute[0].gpus == 1
    assert "included in the machine price" in compute[0].note
    # the machine price already holds the L4: it is far above the L4 alone, not L4 + machine
    assert price("gce/g2-standard-4", "gcp", "us-central1") < 0.56 + 0.2


def test_a_gpu_attached_to_an_n1_machine_is_priced_on_top() -> None:
    pool = {
        "autoscaling": {"min_node_count": 1, "max_node_count": 1},
        "location": "us-central1-a",
        "node_config": {"machine_type": "n1-standard-4", "guest_accelerator": [{"type": "nvidia-tesla-t4", "count": 2}]},
    }
    r = priced({"google_container_node_pool": {"t4": pool}})["google_container_node_pool.t4"]
    gpu = next(i for i in r.items if "attached" in i.name)
    assert gpu.monthly() == pytest.approx(2 * price("gpu/nvidia-tesla-t4", "gcp", "us-central1") * H)  # zonal: one zone


def test_no_sustained_use_discount_and_spot_is_the_family_factor() -> None:
    pool = {
        "autoscaling": {"min_node_count": 1, "max_node_count": 1},
        "location": "us-central1-a",
        "node_config": {"machine_type": "g2-standard-8", "spot": True},
    }
    r = priced({"google_container_node_pool": {"p": pool}})["google_container_node_pool.p"]
    node = next(i for i in r.items if i.unit == "node-hour")
    on_demand = price("gce/g2-standard-8", "gcp", "us-central1")
    assert node.monthly("on-demand") == pytest.approx(on_demand * H)  # a full month, no discount
    assert node.monthly() == pytest.approx(on_demand * price("spot/gce/g2", "gcp", "us-central1") * H)
    assert node.monthly("commit-3y") == node.monthly()  # spot stays spot under a commitment


@pytest.mark.parametrize(("vms", "hourly"), [(3, 3 * 0.0014), (40, 0.044)])
def test_cloud_nat_is_priced_per_vm_hour_up_to_its_cap(vms: int, hourly: float) -> None:
    pool = {
        "autoscaling": {"min_node_count": vms, "max_node_count": vms},
        "location": "us-central1-a",
        "node_config": {"machine_type": "e2-standard-4"},
    }
    nat = {"region": "us-central1", "nat_ip_allocate_option": "AUTO_ONLY"}
    r = priced({"google_container_node_pool": {"p": pool}, "google_compute_router_nat": {"nat": nat}})["google_compute_router_nat.nat"]
    gateway = next(i for i in r.items if i.ident == "gateway")
    assert gateway.monthly() == pytest.approx(hourly * 730)


def test_regional_pools_multiply_per_zone_limits_by_their_zones() -> None:
    cluster = {"name": "c", "location": "us-central1", "remove_default_node_pool": True}
    pool = {
        "cluster": "${google_container_cluster.c.id}",
        "location": "${google_container_cluster.c.location}",
        "autoscaling": {"min_node_count": 1, "max_node_count": 3},
        "node_config": {"machine_type": "e2-standard-4"},
    }
    r = priced({"google_container_cluster": {"c": cluster}, "google_container_node_pool": {"p": pool}})["google_container_node_pool.p"]
    node = next(i for i in r.items if i.unit == "node-hour")
    assert node.quantity == 3 * H  # three zones by default for a regional cluster


def test_usage_drives_lambda_and_missing_usage_shows_the_unit_price(environments: dict[str, Environment]) -> None:
    fn = {"aws_lambda_function": {"f": {"memory_size": 1024, "architectures": ["x86_64"]}}}
    env = with_usage(environments["dev"], requests_per_month=2_000_000, lambda_avg_duration_ms=100)
    r = priced(fn, env)["aws_lambda_function.f"]
    requests, duration = r.items
    assert requests.monthly() == pytest.approx(2 * 0.20)
    assert duration.monthly() == pytest.approx(2_000_000 * 0.1 * 1.0 * 0.0000166667)
    unknown = priced(fn, with_usage(environments["dev"]))["aws_lambda_function.f"]
    assert unknown.status == "usage" and unknown.monthly() == 0
    assert unknown.items[0].quantity is None
    assert unknown.items[0].price_text() == "$0.20 per 1M requests"


def test_gpu_node_hours_above_the_floor_come_from_usage(environments: dict[str, Environment]) -> None:
    group = {
        "instance_types": ["g6.xlarge"],
        "capacity_type": "SPOT",
        "scaling_config": {"min_size": 0, "desired_size": 0, "max_size": 4},
        "//": {"metadata": {"path": "dev/aws-gpu-l4/group/node-group"}},
    }
    env = with_usage(environments["dev"], gpu_node_hours={"aws/l4": 80})
    r = priced({"aws_eks_node_group": {"g": group}}, env)["aws_eks_node_group.g"]
    hours = next(i for i in r.items if i.ident == "node-hours:above")
    assert hours.quantity == 80
    assert hours.monthly() == pytest.approx(80 * price("ec2/g6.xlarge") * price("spot/ec2/g6"))  # no subnets: the family factor
    assert hours.monthly("on-demand") == pytest.approx(80 * price("ec2/g6.xlarge"))
    disk = next(i for i in r.items if i.ident == "node volumes")
    assert disk.quantity == pytest.approx(20 * 80 / H)  # EKS's default 20 GB volume for 80 node-hours
    without = priced({"aws_eks_node_group": {"g": group}}, with_usage(environments["dev"]))["aws_eks_node_group.g"]
    assert without.status == "usage"  # min 0 and no usage: the unit price, not $0


def test_unknown_types_and_sizes_are_unsupported_never_zero() -> None:
    result = priced(
        {
            "aws_sagemaker_endpoint": {"e": {}},
            "aws_eks_node_group": {
                "g": {"instance_types": ["x9.huge"], "scaling_config": {"min_size": 1, "desired_size": 1, "max_size": 1}}
            },
        }
    )
    assert result["aws_sagemaker_endpoint.e"].status == "unsupported"
    assert "no pricer" in result["aws_sagemaker_endpoint.e"].reason
    assert result["aws_eks_node_group.g"].status == "unsupported"
    assert "ec2/x9.huge" in result["aws_eks_node_group.g"].reason


def test_every_synthesized_resource_is_accounted_for(synth_out: Path) -> None:
    report = estimate(synth_out)
    stacks = {s.name: s for s in load_stacks(synth_out)}
    for env in report.envs:
        counts = env.counts()
        assert sum(counts.values()) == sum(len(stacks[s].resources) for s in env.stacks)
        assert counts["unsupported"] == 0, [r.address for r in env.resources if r.status == "unsupported"]
        assert counts["priced"] > 10
        for r in env.resources:
            if r.status == "free":
                assert r.reason, r.address
        # configured never costs more than all on-demand; commitments never more than on-demand
        assert env.total() <= env.total("on-demand") + 1e-6
        assert env.total("commit-3y") <= env.total("commit-1y") <= env.total("on-demand") + 1e-6
    production = next(e for e in report.envs if e.env == "production")
    assert production.total() > next(e for e in report.envs if e.env == "dev").total()
    assert not report.over_budget


def test_catalog_entries_carry_source_and_date_and_gpus_agree_with_facts() -> None:
    assert CATALOG.prices
    for p in CATALOG.prices.values():
        assert p.source.startswith("https://") and p.read.year >= 2025, p.key
        if p.key.startswith("gce/") and (builtin := facts.gcp_machine_gpu(p.key[4:])):
            assert p.gpus == builtin, p.key
    assert CATALOG.unconfirmed > 0  # the catalog says which figures it could not confirm


def test_a_bad_catalog_names_the_file_and_the_entry(tmp_path: Path) -> None:
    data = yaml.safe_load(Path(CATALOG.path).read_text())
    del data["aws"]["us-east-1"]["ec2/g6.xlarge"]["unit"]
    bad = tmp_path / "prices.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError, match=r"prices\.yaml: aws\.us-east-1\.ec2/g6\.xlarge.*unit"):
        load_catalog(bad)


def test_cli_formats_and_budget_exit_codes(synth_out: Path, env_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--outdir", str(synth_out), "--env-dir", str(env_dir), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["env"] for e in data["environments"]] == ["dev", "staging", "production"]
    md = tmp_path / "cost.md"
    assert main(["cost", "staging", "--outdir", str(synth_out), "--env-dir", str(env_dir), "-f", "markdown", "-o", str(md)]) == 0
    text = md.read_text()
    assert "| staging |" in text and len(text) < 65_536
    # a budget the estimate crosses: exit 1, and the message names the environment and the scope
    dev = read_env(env_dir, "dev")
    dev["budget"].update(monthly_usd=150, by_cloud={"aws": 100, "gcp": 50})
    write_env(env_dir, "dev", dev)
    assert main(["cost", "dev", "--outdir", str(synth_out), "--env-dir", str(env_dir), "-f", "json"]) == 1
    err = capsys.readouterr().err
    assert "over budget" in err and "dev total" in err and "dev aws" in err
    assert main(["cost", "nowhere", "--outdir", str(synth_out), "--env-dir", str(env_dir)]) == 2


def _edit_stack(outdir: Path, name: str, edit: Any) -> None:
    path = outdir / "stacks" / name / "cdk.tf.json"
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


def _node_group(raw: dict[str, Any], path_part: str) -> dict[str, Any]:
    return next(v for v in raw["resource"]["aws_eks_node_group"].values() if path_part in v["//"]["metadata"]["path"])


def test_diff_of_two_snapshots_keys_by_address_and_item(
    synth_out: Path, env_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = tmp_path / "head"
    shutil.copytree(synth_out, head)

    def more_gpus(raw: dict[str, Any]) -> None:
        _node_group(raw, "aws-gpu-l4/")["scaling_config"]["min_size"] = 3

    _edit_stack(head, "staging", more_gpus)
    base_report = estimate(synth_out, env_dir, ["staging"])
    head_report = estimate(head, env_dir, ["staging"])
    d = cost_diff.diff(base_report, head_report)
    (env,) = d.envs
    assert env.max_increase_pct == 25  # staging.yaml's budget.max_increase_pct
    # a floor of 3 always-on g6.xlarge spot nodes: 3 × 730 h, of which the declared 200 h were counted before
    spot_rate = price("ec2/g6.xlarge") * price("spot/ec2/g6")  # no zone prices in the catalog: the family factor
    disks = 100 * price("ebs/gp3")  # the group's 100 GB volumes, for the added node-hours
    added_hours = 3 * H - 200
    # and Container Insights' 8 metrics per node for the nodes added: 8 × (3 − 200/730) × $0.30
    metrics = price("container-insights/metrics-per-node") * price("cloudwatch/custom-metric")
    assert env.delta == pytest.approx(added_hours * spot_rate + added_hours / H * (disks + metrics), rel=1e-6)
    by_item = {i.item: i for i in env.items}
    assert by_item["node-hours:floor"].change == "added"
    assert by_item["node-hours:above"].change == "removed"  # 200 h declared is now below the floor
    assert env.pct is not None and env.pct > 25 and env.increase_exceeded
    text = cost_diff.markdown(d)
    assert text.startswith("### ") and f"{env.delta:,.2f}" in text.replace("+$", "").replace("$", "")
    # the CLI: staging's max_increase_pct is 25; this change raises it far more: exit 1
    code = main(
        ["cost", "diff", "staging", "--outdir", str(head), "--env-dir", str(env_dir), "--base-outdir", str(synth_out), "-f", "json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["environments"][0]["increase_exceeded"] is True and code == 1
    assert main(["cost", "diff", "--outdir", str(head), "--env-dir", str(env_dir)]) == 2  # neither --base nor --base-outdir


def test_diff_markdown_stays_under_the_limit(synth_out: Path, env_dir: Path) -> None:
    report = estimate(synth_out, env_dir)
    empty = estimate(synth_out, env_dir)
    for e in empty.envs:
        e.resources = []
    d = cost_diff.diff(empty, report)
    text = cost_diff.markdown(d, limit=4000)
    assert len(text) <= 4000
    assert "left out" in text


def test_a_plan_json_prices_like_the_synthesized_stack(synth_out: Path, tmp_path: Path) -> None:
    """A plan shaped like `terraform show -json`: planned values (references resolved, launch
    template ids unknown) and the provider's region in configuration."""
    (production,) = [s for s in load_stacks(synth_out, ["production"])]
    planned = []
    for r in production.resources:
        values = {k: v for k, v in r.values.items() if k not in ("//", "lifecycle", "depends_on")}
        if r.type == "aws_eks_node_group":
            values["launch_template"] = [{"id": None, "version": None}]  # known after apply
        if r.type == "google_container_node_pool":
            values["location"] = "us-central1"
            values["cluster"] = "mlp-production-gke"
        planned.append({"address": r.address, "mode": "managed", "type": r.type, "name": r.name, "values": values})
    plan = {
        "format_version": "1.2",
        "planned_values": {"root_module": {"resources": planned}},
        "configuration": {
            "provider_config": {
                "aws": {"name": "aws", "expressions": {"region": {"constant_value": "us-east-1"}}},
                "google": {"name": "google", "expressions": {"region": {"constant_value": "us-central1"}}},
            }
        },
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert stack_from_plan(path, "production").resources
    from_plan = estimate(synth_out, names=["production"], plans={"production": path})
    from_synth = estimate(synth_out, names=["production"])
    assert from_plan.source == "plan"
    assert from_plan.envs[0].counts()["unsupported"] == 0
    assert from_plan.envs[0].total() == pytest.approx(from_synth.envs[0].total() - _other_stacks_total(from_synth), rel=1e-9)


def _other_stacks_total(report: Any) -> float:
    """What the environment's other stacks (registries, workloads) cost: the plan is of the environment stack."""
    env = report.envs[0]
    return sum(r.monthly() for r in env.resources if r.stack != env.env)


def test_a_file_that_is_not_a_plan_is_a_usage_error(synth_out: Path, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"resource_changes": []}')
    assert main(["cost", "production", "--outdir", str(synth_out), "--plan", f"production={bad}"]) == 2
    assert main(["cost", "production", "--outdir", str(synth_out), "--plan", "production"]) == 2


def test_base_ref_is_synthesized_in_a_worktree_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--base REF: the ref is synthesized in a temporary git worktree (the checkout untouched), then cached by commit."""
    import subprocess

    from infra.synth import synth_ref
    from tests.conftest import ROOT, tree_digest

    monkeypatch.setenv("INFRA_CACHE_DIR", str(tmp_path / "cache"))
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    outdir, env_dir = synth_ref("HEAD", ROOT)
    assert (outdir / "manifest.json").exists() and (env_dir / "production.yaml").exists()
    digest = tree_digest(outdir)
    assert synth_ref("HEAD", ROOT) == (outdir, env_dir)  # cached: same place, not redone
    assert tree_digest(outdir) == digest
    assert subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout == before
    assert subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True).stdout == worktrees
    with pytest.raises(Exception, match="not a commit"):
        synth_ref("no-such-ref-anywhere", ROOT)
