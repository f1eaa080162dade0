"""The real cdktf CLI (pinned in package.json): `cdktf synth` of this app, and `cdktf deploy`
through the bundled Terraform engine on a stack that needs no downloaded provider."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.servers import engine_example
from tests.stacks.test_snapshots import normalized

CDKTF = ROOT / "node_modules" / ".bin" / "cdktf"
SHIM = ROOT / ".venv" / "bin" / "infra-terraform"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CDKTF.exists() or not SHIM.exists(), reason="needs `make install` (cdktf CLI and infra-terraform)"),
]


def _cli_env() -> dict[str, str]:
    return {
        **os.environ,
        "TERRAFORM_BINARY_NAME": str(SHIM),
        "CHECKPOINT_DISABLE": "1",
        "DISABLE_VERSION_CHECK": "1",
        "CI": "true",
        "FORCE_COLOR": "0",
    }


def test_cdktf_synth_writes_the_same_stacks(synth_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.out"
    result = subprocess.run(
        [str(CDKTF), "synth", "--output", str(out)], cwd=ROOT, env=_cli_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stacks = sorted(p.name for p in (out / "stacks").iterdir())
    assert stacks == sorted(p.name for p in (synth_out / "stacks").iterdir())
    for stack in stacks:
        assert normalized(out / "stacks" / stack / "cdk.tf.json") == normalized(synth_out / "stacks" / stack / "cdk.tf.json")


def _cdktf(cwd: Path, *args: str, version: str = "v1") -> subprocess.CompletedProcess[str]:
    env = {**_cli_env(), "MODEL_VERSION": version}
    return subprocess.run([str(CDKTF), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_example_stack_deploys_diffs_and_destroys_through_the_bundled_engine(tmp_path: Path) -> None:
    """examples/engine: `cdktf deploy` (init, plan, apply), a second plan with no changes, `cdktf diff`
    after a change, `cdktf destroy`, each checked in the engine's output and the state file."""
    work = tmp_path / "engine"
    shutil.copytree(ROOT / "examples" / "engine", work)
    config = json.loads((work / "cdktf.json").read_text())
    (work / "cdktf.json").write_text(json.dumps({**config, "app": f"{sys.executable} main.py"}))
    (work / "main.py").write_text((work / "main.py").read_text().replace("Path(__file__).resolve().parents[2]", repr(str(ROOT))))
    state_file = work / "cdktf.out" / "stacks" / "staging" / "terraform.tfstate"

    deploy = _cdktf(work, "deploy", "staging", "--auto-approve")
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    state = json.loads(state_file.read_text())
    assert state["outputs"]["model_output"]["value"] == "model-v1"
    assert sorted(r["name"] for r in state["resources"]) == ["endpoint", "model"]

    again = _cdktf(work, "diff", "staging")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout

    changed = _cdktf(work, "diff", "staging", version="v2")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "terraform_data.model (model) will be updated in-place" in changed.stdout
    assert "terraform_data.endpoint (endpoint) must be replaced" in changed.stdout
    assert json.loads(state_file.read_text())["serial"] == state["serial"]  # diff changed nothing

    # staging-workloads (never deployed here) reads staging's output: destroy staging alone
    destroy = _cdktf(work, "destroy", "staging", "--auto-approve", "--ignore-missing-stack-dependencies")
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    assert json.loads(state_file.read_text())["resources"] == []


def test_infra_plan_and_drift_on_the_example_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`infra plan ENV` / `infra drift ENV` with the bundled engine: pending changes exit 1, a clean state 0."""
    from infra import engine
    from infra.cli.app import main

    example = engine_example()
    out = tmp_path / "cdktf.out"
    monkeypatch.setenv("MODEL_VERSION", "v1")
    example.build(str(out)).synth()
    report = tmp_path / "plan.json"

    assert main(["plan", "staging", "--outdir", str(out), "--format", "json", "-o", str(report)]) == 1
    planned = json.loads(report.read_text())["environments"][0]
    assert sorted((c["action"], c["address"], c["source"]) for c in planned["changes"]) == [
        ("create", "terraform_data.endpoint", "plan"),
        ("create", "terraform_data.model", "plan"),
    ]
    assert (out / "stacks" / "staging" / "plan.json").exists()
    assert not (out / "stacks" / "staging-workloads" / "plan.json").exists()  # waits for staging's output
    code, _, err = engine.run("apply", ["-input=false", "-no-color", "plan.tfplan"], cwd=out / "stacks" / "staging")
    assert code == 0, err
    # staging applied: its workloads stack is planned now
    assert main(["plan", "staging", "--outdir", str(out), "--format", "json", "-o", str(report)]) == 1
    assert [c["address"] for c in json.loads(report.read_text())["environments"][0]["changes"]] == ["terraform_data.serving"]
    code, _, err = engine.run("apply", ["-input=false", "-no-color", "plan.tfplan"], cwd=out / "stacks" / "staging-workloads")
    assert code == 0, err
    assert main(["plan", "staging", "--outdir", str(out)]) == 0
    assert main(["drift", "staging", "--outdir", str(out)]) == 0

    # drift: the state no longer matches what the resources say (edited outside Terraform)
    state_path = out / "stacks" / "staging" / "terraform.tfstate"
    state = json.loads(state_path.read_text())
    state["outputs"]["model_output"]["value"] = "edited-by-hand"
    state["serial"] += 1
    state_path.write_text(json.dumps(state))
    assert main(["drift", "staging", "--outdir", str(out), "--format", "json", "-o", str(report)]) == 1
    drift = json.loads(report.read_text())
    assert drift["environments"][0]["state"] == "changed"
    assert "staging: output `model_output` update" in drift["notes"]

    monkeypatch.setenv("MODEL_VERSION", "v2")
    example.build(str(out)).synth()
    assert main(["plan", "staging", "--outdir", str(out), "--format", "json", "-o", str(report)]) == 1
    updates = {c["address"]: c["action"] for c in json.loads(report.read_text())["environments"][0]["changes"]}
    assert updates == {"terraform_data.model": "update", "terraform_data.endpoint": "replace"}
