"""The environment files: the repository's own load cleanly; every broken one is rejected with the
file, the exact field, exit code 2, and the previous synth output untouched."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from environments.loader import EnvironmentFileError, load_environment, load_environments
from environments.schema import Environment
from infra.cli.app import main
from tests.conftest import ROOT, read_env, tree_digest, write_env


def test_repository_environments_load_in_promotion_order(environments: dict[str, Environment]) -> None:
    assert list(environments) == ["dev", "staging", "production"]
    assert [e.branch for e in environments.values()] == ["develop", "staging", "main"]
    assert [e.requires_approval for e in environments.values()] == [False, False, True]


def test_derived_identity(environments: dict[str, Environment]) -> None:
    staging = environments["staging"]
    assert staging.resource_name("eks") == "mlp-staging-eks"
    assert staging.state_key == "mlp/staging/terraform.tfstate"
    assert staging.state_region == "us-east-1"
    assert staging.all_tags["environment"] == "staging"
    assert staging.all_tags["managed-by"] == "cdktf"


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return apply


_DELETE = object()

# (case id, file to break, mutation, field path that the error must name)
CASES: list[tuple[str, str, Mutation, str]] = [
    ("unknown-key", "dev", lambda d: d["aws"]["network"].update(azz=2), "aws.network.azz"),
    ("wrong-type", "dev", _set("aws.network.zones", "two"), "aws.network.zones"),
    ("zone-of-other-region", "dev", _set("aws.network.zones", ["us-west-2a", "us-east-1b"]), "aws.network.zones[0]"),
    ("zone-twice", "dev", _set("aws.network.zones", ["us-east-1a", "us-east-1a"]), "aws.network.zones[1]"),
    ("log-retention-not-cloudwatch", "dev", _set("aws.cluster.log_retention_days", 45), "aws.cluster.log_retention_days"),
    ("skip-without-reason", "dev", _set("policy.skips.0.reason", " "), "policy.skips[0].reason"),
    ("skip-of-unknown-check", "dev", _set("policy.skips.0.check", "no-such-check"), "policy.skips[0].check"),
    ("budget-split-wrong-sum", "dev", _set("budget.by_cloud.gcp", 1), "budget.by_cloud"),
    ("budget-split-missing-cloud", "dev", _set("budget.by_cloud", {"aws": 1500}), "budget.by_cloud"),
    ("rbac-group-name", "dev", _set("gcp.cluster.rbac_security_group", "admins@example.com"), "gcp.cluster.rbac_security_group"),
    ("missing-section", "dev", _set("budget", _DELETE), "budget"),
    ("min-gt-desired", "dev", _set("aws.cluster.gpu_node_groups.0.min", 2), "aws.cluster.gpu_node_groups[0].desired"),
    ("gke-min-gt-max", "dev", _set("gcp.cluster.gpu_node_pools.0.min", 5), "gcp.cluster.gpu_node_pools[0].min"),
    (
        "no-gpu-instance",
        "dev",
        _set("aws.cluster.gpu_node_groups.0.instance_types", ["m5.large"]),
        "aws.cluster.gpu_node_groups[0].instance_types[0]",
    ),
    (
        "mixed-gpu-shapes",
        "dev",
        _set("aws.cluster.gpu_node_groups.0.instance_types", ["g6.xlarge", "g6.12xlarge"]),
        "aws.cluster.gpu_node_groups[0].instance_types[1]",
    ),
    (
        "accelerator-family",
        "dev",
        _set("gcp.cluster.gpu_node_pools.0.accelerator.type", "nvidia-tesla-a100"),
        "gcp.cluster.gpu_node_pools[0].accelerator.type",
    ),
    (
        "accelerator-count",
        "dev",
        _set("gcp.cluster.gpu_node_pools.0.accelerator.count", 2),
        "gcp.cluster.gpu_node_pools[0].accelerator.count",
    ),
    (
        "machine-without-gpu",
        "dev",
        _set("gcp.cluster.gpu_node_pools.0.machine_type", "e2-standard-8"),
        "gcp.cluster.gpu_node_pools[0].machine_type",
    ),
    ("bad-cidr", "dev", _set("aws.network.cidr", "10.10.0.0/33"), "aws.network.cidr"),
    ("overlap-within", "dev", _set("gcp.network.pods_cidr", "10.11.0.0/16"), "gcp.network.pods_cidr"),
    ("overlap-across", "staging", _set("aws.network.cidr", "10.10.0.0/16"), "aws.network.cidr"),
    ("duplicate-branch", "staging", _set("branch", "develop"), "branch"),
    ("name-not-file", "staging", _set("name", "dev"), "name"),
    ("unknown-aws-region", "dev", _set("aws.region", "us-east-9"), "aws.region"),
    ("unknown-gcp-region", "dev", _set("gcp.region", "us-central9"), "gcp.region"),
    ("production-no-approval", "production", _set("requires_approval", False), "requires_approval"),
    ("endpoint-unknown-repo", "dev", _set("aws.endpoints.0.repository", "other"), "aws.endpoints[0].repository"),
    ("missing-team-tag", "dev", lambda d: d["tags"].pop("team"), "tags"),
    ("derived-tag", "dev", lambda d: d["tags"].update(environment="x"), "tags.environment"),
    ("unsupported-k8s", "dev", _set("aws.cluster.kubernetes_version", "1.29"), "aws.cluster.kubernetes_version"),
    # 1.34 leaves standard support on 2026-12-02: EKS would upgrade it behind Terraform's back
    ("k8s-leaving-standard-support", "dev", _set("aws.cluster.kubernetes_version", "1.34"), "aws.cluster.kubernetes_version"),
    ("tag-and-digest", "dev", _set("aws.endpoints.0.image_digest", "sha256:" + "a" * 64), "aws.endpoints[0].image_tag"),
    ("usage-unknown-pool", "dev", lambda d: d["usage"]["gpu_node_hours"].update({"aws/l5": 3}), "usage.gpu_node_hours.aws/l5"),
    (
        "eks-taint-casing",
        "dev",
        _set("aws.cluster.gpu_node_groups.0.taints.0.effect", "NO_SCHEDULE"),
        "aws.cluster.gpu_node_groups[0].taints[0].effect",
    ),
    ("promotes-to-unknown", "dev", _set("promotes_to", "qa"), "promotes_to"),
    (
        "zone-outside-region",
        "dev",
        _set("gcp.cluster.gpu_node_pools.0.zones", ["europe-west4-a"]),
        "gcp.cluster.gpu_node_pools[0].zones[0]",
    ),
    ("trigger-unknown-registry", "dev", _set("gcp.build_triggers.0.registry", "nope"), "gcp.build_triggers[0].registry"),
    ("triggers-without-connection", "dev", lambda d: d["gcp"].pop("build_connection"), "gcp.build_connection"),
    ("public-endpoint-no-cidrs", "dev", _set("aws.cluster.public_access_cidrs", []), "aws.cluster.public_access_cidrs"),
    ("serving-unknown-registry", "dev", _set("serving.registry", "other"), "serving.registry"),
    ("serving-unknown-gpu-pool", "production", _set("serving.gpu_pool", "a100"), "serving.gpu_pool"),
    ("serving-replicas-order", "staging", _set("serving.replicas.min", 5), "serving.replicas.min"),
    ("serving-cpu-quantity", "dev", _set("serving.cpu", "half"), "serving.cpu"),
    ("serving-no-image", "dev", _set("serving.image_tag", _DELETE), "serving.image_tag"),
    ("lambda-runs-service-image", "staging", _set("aws.endpoints.0.image_tag", "v1.0.0"), "aws.endpoints[0].image_tag"),
    ("vpc-too-small", "dev", _set("aws.network.cidr", "10.10.0.0/21"), "aws.network.cidr"),
    (
        "gpu-group-mixed-sizes",
        "dev",
        _set("aws.cluster.gpu_node_groups.0.instance_types", ["g6.2xlarge", "g6.4xlarge"]),
        "aws.cluster.gpu_node_groups[0].instance_types[1]",
    ),
    (
        "ami-of-other-arch",
        "dev",
        _set("aws.cluster.gpu_node_groups.0.ami_type", "AL2023_ARM_64_NVIDIA"),
        "aws.cluster.gpu_node_groups[0].ami_type",
    ),
    (
        "private-endpoint-with-cidrs",
        "staging",
        _set("aws.cluster.public_access_cidrs", ["203.0.113.0/24"]),
        "aws.cluster.public_access_cidrs",
    ),
    ("no-cloud", "dev", lambda d: (d.pop("aws"), d.pop("gcp")), "aws"),
    ("s3-state-needs-region", "dev", lambda d: (d.pop("aws"), d["usage"].update(gpu_node_hours={"gcp/l4": 1})), "state.region"),
    ("state-unknown-region", "dev", _set("state.region", "us-east-9"), "state.region"),
    (
        "budget-share-of-missing-cloud",
        "dev",
        lambda d: (d.pop("gcp"), d["usage"].update(gpu_node_hours={"aws/l4": 1})),
        "budget.by_cloud.gcp",
    ),
    ("gcs-soft-delete-days", "dev", _set("models.gcs_retention_days", 3), "models.gcs_retention_days"),
    ("model-digest-without-version", "dev", _set("models.digest", "sha256:" + "a" * 64), "models.digest"),
    ("model-digest-not-sha256", "staging", _set("models.digest", "md5:abc"), "models.digest"),
    (
        "replica-without-aws",
        "dev",
        lambda d: (
            d.pop("aws"),
            d["state"].update(region="us-east-1"),
            d["usage"].update(gpu_node_hours={"gcp/l4": 1}),
            d["budget"].pop("by_cloud"),
            d["models"].update(replica_region="us-west-2"),
        ),
        "models.replica_region",
    ),
    ("replica-unknown-region", "dev", _set("models.replica_region", "us-east-9"), "models.replica_region"),
    ("replica-same-region", "dev", _set("models.replica_region", "us-east-1"), "models.replica_region"),
    ("service-account-id-too-long", "dev", lambda d: d.update(project="abcdefghijkl", name="abcdefghijkl"), "name"),
    (
        "serving-without-cluster",
        "dev",
        lambda d: (d["aws"].pop("cluster"), d["gcp"].pop("cluster"), d["usage"].pop("gpu_node_hours")),
        "serving",
    ),
    (
        "unknown-accelerator",
        "dev",
        _set("gcp.cluster.gpu_node_pools.0.accelerator.type", "nvidia-h9000"),
        "gcp.cluster.gpu_node_pools[0].accelerator.type",
    ),
    (
        "n1-with-l4",
        "dev",
        lambda d: d["gcp"]["cluster"]["gpu_node_pools"][0].update(machine_type="n1-standard-8"),
        "gcp.cluster.gpu_node_pools[0].accelerator.type",
    ),
    (
        "n1-three-gpus",
        "dev",
        lambda d: d["gcp"]["cluster"]["gpu_node_pools"][0].update(
            machine_type="n1-standard-8", accelerator={"type": "nvidia-tesla-t4", "count": 3}
        ),
        "gcp.cluster.gpu_node_pools[0].accelerator.count",
    ),
    ("master-cidr-not-28", "dev", _set("gcp.cluster.master_cidr", "172.16.0.0/27"), "gcp.cluster.master_cidr"),
    (
        "private-endpoint-public-nodes",
        "dev",
        lambda d: d["gcp"]["cluster"].update(private_nodes=False, private_endpoint=True),
        "gcp.cluster.private_endpoint",
    ),
    ("thresholds-not-increasing", "dev", _set("budget.thresholds_pct", [80, 50]), "budget.thresholds_pct"),
    ("ceiling-below-budget", "dev", _set("budget.ceiling_usd", 100), "budget.ceiling_usd"),
    (
        "gpu-group-name-twice",
        "dev",
        lambda d: d["aws"]["cluster"]["gpu_node_groups"].append(dict(d["aws"]["cluster"]["gpu_node_groups"][0])),
        "aws.cluster.gpu_node_groups[1].name",
    ),
]


@pytest.fixture
def previous_out(tmp_path: Path) -> Path:
    """A stand-in for an earlier synth that a failed synth must leave exactly as it was."""
    out = tmp_path / "cdktf.out"
    (out / "stacks" / "dev").mkdir(parents=True)
    (out / "manifest.json").write_text('{"stacks": {}}')
    (out / "stacks" / "dev" / "cdk.tf.json").write_text('{"previous": true}')
    return out


@pytest.mark.parametrize(("file", "mutate", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_file_is_rejected_with_its_field(
    env_dir: Path, previous_out: Path, capsys: pytest.CaptureFixture[str], file: str, mutate: Mutation, field: str
) -> None:
    data = read_env(env_dir, file)
    mutate(data)
    write_env(env_dir, file, data)
    before = tree_digest(previous_out)

    code = main(["synth", "--env-dir", str(env_dir), "--outdir", str(previous_out)])

    err = capsys.readouterr().err
    assert code == 2
    assert f"{file}.yaml" in err
    assert f": {field}: " in err, err
    assert tree_digest(previous_out) == before


def test_yaml_syntax_error_names_file_and_line(env_dir: Path, previous_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = env_dir / "dev.yaml"
    lines = path.read_text().splitlines()
    broken = next(i for i, line in enumerate(lines) if line.strip().startswith("zones:"))
    lines[broken] = "    zones: [us-east-1a"
    path.write_text("\n".join(lines) + "\n")
    before = tree_digest(previous_out)

    code = main(["synth", "--env-dir", str(env_dir), "--outdir", str(previous_out)])

    err = capsys.readouterr().err
    assert code == 2
    assert "YAML syntax error" in err
    assert "dev.yaml:" in err
    assert tree_digest(previous_out) == before


def test_error_carries_line_and_did_you_mean(env_dir: Path) -> None:
    text = (env_dir / "dev.yaml").read_text().replace("    flow_log_retention_days: 30", "    flow_log_retention_dayz: 30")
    (env_dir / "dev.yaml").write_text(text)
    expected_line = text.splitlines().index("    flow_log_retention_dayz: 30") + 1
    with pytest.raises(EnvironmentFileError) as info:
        load_environment(env_dir / "dev.yaml")
    problem = info.value.problems[0]
    assert problem.field == "aws.network.flow_log_retention_dayz"
    assert problem.line == expected_line
    assert "did you mean 'flow_log_retention_days'" in problem.message


def test_cross_environment_overlap_names_both_files(env_dir: Path) -> None:
    data = read_env(env_dir, "staging")
    data["aws"]["network"]["cidr"] = "10.10.0.0/16"
    write_env(env_dir, "staging", data)
    with pytest.raises(EnvironmentFileError) as info:
        load_environments(env_dir)
    message = str(info.value)
    assert "staging.yaml" in message and "dev.yaml" in message


def test_an_environment_that_receives_promotions_may_not_skip_checks(env_dir: Path) -> None:
    data = read_env(env_dir, "staging")
    data["policy"] = {"skips": [{"check": "CKV_AWS_39", "reason": "the staging API is public for the demo week"}]}
    write_env(env_dir, "staging", data)
    with pytest.raises(EnvironmentFileError) as info:
        load_environments(env_dir)
    problem = info.value.problems[0]
    assert (problem.file.name, problem.field) == ("staging.yaml", "policy.skips")
    assert "receives promotions from dev" in problem.message


def test_promotion_cycle_is_rejected(env_dir: Path) -> None:
    data = read_env(env_dir, "production")
    data["promotes_to"] = "dev"
    write_env(env_dir, "production", data)
    with pytest.raises(EnvironmentFileError, match="cycle"):
        load_environments(env_dir)


def test_extended_support_is_counted_to_its_own_end(env_dir: Path) -> None:
    """1.34 with support_type EXTENDED is supported until 2027-12-02 (facts.yaml)."""
    from datetime import date

    from environments import facts

    data = read_env(env_dir, "dev")
    data["aws"]["cluster"].update(kubernetes_version="1.34", support_type="EXTENDED")
    write_env(env_dir, "dev", data)
    until = facts.eks_kubernetes_versions()["1.34"].extended_until
    if (until - date.today()).days <= facts.eks_support_margin_days():
        pytest.skip("1.34's extended support has ended: the case now fails on purpose")
    assert load_environments(env_dir)["dev"].aws.cluster.kubernetes_version == "1.34"  # type: ignore[union-attr]


def test_every_eks_version_has_an_autoscaler_release() -> None:
    from environments import facts

    for version in facts.eks_kubernetes_versions():
        chart, image = facts.cluster_autoscaler(version) or ("", "")
        assert chart and image.startswith(f"v{version}."), version


def test_one_cloud_environment_is_valid(env_dir: Path) -> None:
    data = read_env(env_dir, "dev")
    del data["gcp"]
    del data["budget"]["by_cloud"]  # one cloud takes the whole budget
    data["usage"]["gpu_node_hours"] = {"aws/l4": 10}
    write_env(env_dir, "dev", data)
    env = load_environments(env_dir)["dev"]
    assert env.gcp is None
    assert env.budget_usd("aws") == env.budget.monthly_usd


@pytest.mark.parametrize("machine", ["n1-standard-8", "n1-standard-16"])
def test_n1_machines_take_an_attachable_t4(env_dir: Path, machine: str) -> None:
    data = read_env(env_dir, "dev")
    data["gcp"]["cluster"]["gpu_node_pools"][0].update(machine_type=machine, accelerator={"type": "nvidia-tesla-t4", "count": 1})
    write_env(env_dir, "dev", data)
    pool = load_environments(env_dir)["dev"].gcp.cluster.gpu_node_pools[0]  # type: ignore[union-attr]
    assert (pool.machine_type, pool.accelerator.type) == (machine, "nvidia-tesla-t4")


def test_bad_file_fails_before_cdktf_is_imported(env_dir: Path, previous_out: Path) -> None:
    data = read_env(env_dir, "dev")
    data["aws"]["network"]["zones"] = ["us-east-1a"]
    write_env(env_dir, "dev", data)
    script = (
        "import sys\nfrom infra.cli.app import main\n"
        f"code = main(['synth', '--env-dir', {str(env_dir)!r}, '--outdir', {str(previous_out)!r}])\n"
        "print(code, 'cdktf' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert "aws.network.zones" in result.stderr


def test_tools_take_loaded_environments_and_read_no_folder_again(env_dir: Path) -> None:
    """A command loads its environment files once and hands the collection to the tools; a tool
    given loaded environments never reads the folder again (here it is gone), and gives what it
    gives from the folder."""
    from environments.loader import loaded
    from infra.ci_matrix import matrix

    envs = load_environments(env_dir)
    assert loaded(envs) is envs
    from_folder = matrix("staging", None, env_dir)
    for f in env_dir.glob("*.yaml"):
        f.unlink()
    assert matrix("staging", None, envs) == from_folder
    with pytest.raises(EnvironmentFileError, match="no environment files"):
        loaded(env_dir)
