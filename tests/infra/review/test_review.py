"""`infra review`: git repositories made in temporary directories, a base commit and changes on top
of it, reviewed through `main(argv)` with the real synth, diff, cost and policy."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli.app import main
from infra.git import git
from tests.conftest import ROOT

COPY = ("environments", "stacks", "charts", "infra", "app/__init__.py", "app/k8s.py", "main.py", "cdktf.json", "pyproject.toml")


def _edit(repo: Path, env: str, change: Any) -> None:
    path = repo / "environments" / f"{env}.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _extra_registry(data: dict[str, Any]) -> None:
    data["aws"]["registries"].append({"name": "features", "keep_last": 30})


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository whose base commit has production with a second registry (`features`)."""
    repo = tmp_path_factory.mktemp("review") / "repo"
    repo.mkdir()
    for rel in COPY:
        src = ROOT / rel
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, repo / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / rel)
    _edit(repo, "production", _extra_registry)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "base")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INFRA_CACHE_DIR", str(repo.parent / "cache"))
        mp.chdir(repo)
        yield repo


def _commit(repo: Path, branch: str, message: str, edits: list[tuple[str, Any]] = (), code: tuple[str, str, str] | None = None) -> None:  # type: ignore[assignment]
    git(repo, "checkout", "-q", "-B", branch, "main")
    for env, change in edits:
        _edit(repo, env, change)
    if code:
        path, old, new = code
        text = (repo / path).read_text()
        assert old in text
        (repo / path).write_text(text.replace(old, new))
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-am", message)
    git(repo, "checkout", "-q", "main")


def _review(repo: Path, head: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    out = repo / f"{head}.json"
    code = main(
        ["review", "--base", "main", "--head", head, "--format", "json", "-o", str(out), "--report-dir", str(repo / "reports"), *extra]
    )
    return code, json.loads(out.read_text()), (repo / "reports" / "review.md").read_text()


def _env(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in report["environments"] if e["env"] == name)


def _rows(env: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["action"], c["type"], c["path"]) for c in env["changes"]}


def test_a_new_gpu_pool_and_an_in_place_machine_type_change(repo: Path) -> None:
    def add_pool(data: dict[str, Any]) -> None:
        pool = dict(data["aws"]["cluster"]["gpu_node_groups"][0], name="a10", instance_types=["g5.xlarge"])
        data["aws"]["cluster"]["gpu_node_groups"].append(pool)
        data["usage"]["gpu_node_hours"]["aws/a10"] = 100

    def machine_type(data: dict[str, Any]) -> None:
        data["gcp"]["cluster"]["system_node_pool"]["machine_type"] = "e2-standard-2"

    _commit(repo, "pool", "dev: a10 pool; staging: bigger GKE system nodes", [("dev", add_pool), ("staging", machine_type)])
    code, report, md = _review(repo, "pool", "--skip", "policy")
    assert code == 0, report["blocking"]
    dev, staging, production = (_env(report, n) for n in ("dev", "staging", "production"))
    assert {r for r in _rows(dev) if r[1] in ("aws_eks_node_group", "aws_launch_template")} == {
        ("create", "aws_eks_node_group", "dev/aws-gpu-a10/group/node-group"),
        ("create", "aws_launch_template", "dev/aws-gpu-a10/group/launch-template"),
    }
    # its at-max alarm is new; the device plugin's DaemonSet now also runs on the new group's nodes and
    # the dashboard gains its row: in-place updates
    assert ("create", "aws_cloudwatch_metric_alarm", "dev/aws-monitoring/gpu-at-max-a10") in _rows(dev)
    assert {r for r in _rows(dev) if r[0] != "create"} == {
        ("update", "helm_release", "dev-workloads/nvidia-device-plugin"),
        ("update", "aws_cloudwatch_dashboard", "dev/aws-monitoring/dashboard"),
    }
    plugin = next(c for c in dev["changes"] if c["type"] == "helm_release")
    assert [a["after"] for a in plugin["attributes"]] == ["a10"] and plugin["attributes"][0]["before"] is None
    assert dev["counts"]["replace"] == dev["counts"]["delete"] == 0 and dev["permissions"] == []
    assert _rows(staging) == {("update", "google_container_node_pool", "staging/gcp-gke/system/pool")}
    (change,) = staging["changes"]
    assert [(a["path"], a["before"], a["after"], a["forces"]) for a in change["attributes"]] == [
        ("node_config.machine_type", "e2-standard-4", "e2-standard-2", "")
    ]
    assert production["state"] == "unchanged" and production["changes"] == []
    assert dev["cost"]["delta"] > 0 and report["cost"]["monthly"]["delta"] == pytest.approx(
        dev["cost"]["delta"] + staging["cost"]["delta"], abs=0.02
    )
    assert len(dev["synth_hash"]) == 64 and dev["synth_hash"] != dev["base_synth_hash"]
    assert production["synth_hash"] == production["base_synth_hash"]
    assert staging["parity"]["ok"] and staging["parity_new"] == []
    assert f"| dev | {dev['counts']['create']} | 2 | 0 | 0 | 0 |" in md and "| staging 🔒 | 0 | 1 | 0 | 0 | 0 |" in md


def test_a_renamed_construct_is_a_move_with_its_moved_block(repo: Path) -> None:
    _commit(repo, "rename", "rename the KMS construct", code=("stacks/environment_stack.py", '"aws-kms"', '"aws-keys"'))
    code, report, md = _review(repo, "rename", "--skip", "policy", "--skip", "cost")
    assert code == 0, report["blocking"]
    for name in ("dev", "staging", "production"):
        env = _env(report, name)
        assert _rows(env) == {
            ("move", "aws_kms_key", f"{name}/aws-keys/key"),
            ("move", "aws_kms_alias", f"{name}/aws-keys/alias"),
        }, name
        key = next(c for c in env["changes"] if c["type"] == "aws_kms_key")
        assert key["moved_from"].startswith("aws_kms_key.aws-kms_key_") and key["address"].startswith("aws_kms_key.aws-keys_key_")
        assert key["moved_block"] == f"moved {{\n  from = {key['moved_from']}\n  to   = {key['address']}\n}}"
    assert "move_from_id" in md and "moved (renamed construct ids)" in md


def test_deleting_a_registry_in_production_blocks(repo: Path) -> None:
    def drop(data: dict[str, Any]) -> None:
        data["aws"]["registries"] = [r for r in data["aws"]["registries"] if r["name"] != "features"]

    _commit(repo, "drop", "production: drop the features registry", [("production", drop)])
    code, report, md = _review(repo, "drop", "--skip", "policy")
    assert code == 1
    production = _env(report, "production")
    assert _rows(production) == {
        ("delete", "aws_ecr_repository", "production-registries/aws-ecr-features/repository"),
        ("delete", "aws_ecr_lifecycle_policy", "production-registries/aws-ecr-features/lifecycle"),
    }
    blocking = [c for c in production["changes"] if c["blocking"]]
    assert [c["type"] for c in blocking] == ["aws_ecr_repository"]
    assert "stateful aws_ecr_repository" in blocking[0]["blocking"] and "protected environment production" in blocking[0]["blocking"]
    assert report["ok"] is False and any("aws-ecr-features/repository" in b for b in report["blocking"])
    assert md.startswith("## ❌ Infra review: 1 blocking finding(s)")


def test_a_new_policy_failure_blocks_and_a_cached_base_is_reused(repo: Path) -> None:
    def mutable(data: dict[str, Any]) -> None:
        data["aws"]["registries"][0]["immutable_tags"] = False

    _commit(repo, "mutable", "staging: mutable tags", [("staging", mutable)])
    from infra.synth import synth_ref

    base_out, _ = synth_ref("main", repo)  # cached by the inputs' hash (earlier tests may have filled it)
    manifest = base_out / "manifest.json"
    written = manifest.stat().st_mtime_ns
    code, report, _ = _review(repo, "mutable", "--skip", "cost", "--skip", "parity")
    assert code == 1
    staging = _env(report, "staging")
    introduced = {(f["check"], f["path"]) for f in staging["policy"]["introduced"]}
    assert ("MLP005", "aws-ecr-model-server/repository") in introduced
    assert staging["policy"]["fixed"] == []
    assert any(b.startswith("staging: policy: MLP005") for b in report["blocking"])
    assert _env(report, "dev")["policy"] is None  # untouched environments are not re-checked
    # the review reused the cached base synth (not rewritten) and cached the base's findings beside it
    assert manifest.stat().st_mtime_ns == written
    assert list(base_out.parent.glob("policy-*.json"))


def test_usage_errors_exit_2(repo: Path) -> None:
    assert main(["review"]) == 2
    assert main(["review", "--base", "no-such-ref"]) == 2
    assert main(["review", "--base", "main", "--skip", "everything"]) == 2
    assert main(["review", "--base", "main", "--head", "main", "--plan", "nostack=plan.json"]) == 2
